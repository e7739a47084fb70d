"""Dockerfile parser and variable substitution: tables of input → output."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.build.parser import ParseError, ShellLex, parse, parse_key_values

pytestmark = pytest.mark.unit


def test_instructions_continuations_comments() -> None:
    df = parse(
        "# syntax=docker/dockerfile:1\n# escape=\\\n\nFROM busybox AS b\n"
        "RUN echo a \\\n  # inner comment\n\n  && echo b\n"
        'CMD ["echo", "hi"]\nENTRYPOINT echo x\n'
    )
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "\\"}
    cmds = [(i.cmd, i.line) for i in df.instructions]
    assert cmds == [("from", 4), ("run", 5), ("cmd", 9), ("entrypoint", 10)]
    assert df.instructions[1].args == "echo a   && echo b"
    assert df.instructions[2].json and df.instructions[2].words == ("echo", "hi")
    assert not df.instructions[3].json


def test_backtick_escape_directive() -> None:
    df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n")
    assert df.escape == "`"
    assert df.instructions[1].args == "dir c:\\   && echo"


def test_directive_after_comment_is_a_comment() -> None:
    df = parse("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n")
    assert df.escape == "\\"
    assert df.instructions[1].args == "a  b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROMM busybox\n", "dockerfile parse error line 1: unknown instruction: FROMM"),
        ("FROM x\n\n\nfoo bar\n", "dockerfile parse error line 4: unknown instruction: FOO"),
        ("FROM x\nRUN\n", "dockerfile parse error line 2: RUN requires at least one argument"),
        ("FROM x\nRUN <<EOF\nno end\n", "dockerfile parse error line 2: unterminated heredoc EOF"),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert info.value.message == message


def test_flags_and_heredocs() -> None:
    df = parse(
        "FROM --platform=linux/amd64 busybox\n"
        "COPY --from=build --chown=1:2 /a /b\n"
        "RUN <<EOF\necho one\necho two\nEOF\n"
        "COPY <<-'END' /x\n\tindented\n\tEND\n"
    )
    assert df.instructions[0].flag("platform") == "linux/amd64"
    copy = df.instructions[1]
    assert copy.flag("from") == "build" and copy.flag("chown") == "1:2"
    assert copy.args == "/a /b"
    run = df.instructions[2]
    assert run.heredocs[0].content == "echo one\necho two\n"
    doc = df.instructions[3].heredocs[0]
    assert doc.content == "indented\n" and not doc.expand and doc.chomp


ENV = {"A": "a", "EMPTY": "", "SP": "x y"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "a"),
        ("${A}b", "ab"),
        ("${MISSING:-def}", "def"),
        ("${EMPTY:-def}", "def"),
        ("${EMPTY-def}", ""),
        ("${A:+alt}", "alt"),
        ("${MISSING:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("'$A'", "$A"),
        ('"$A b"', "a b"),
        ("\\$A", "$A"),
        ("pre$A.post", "prea.post"),
        ("$", "$"),
        ("$1", "$1"),
    ],
)
def test_process_word(word: str, expected: str) -> None:
    assert ShellLex().process_word(word, ENV) == expected


def test_process_words_splits_before_expanding() -> None:
    assert ShellLex().process_words('a "b c" $SP', ENV) == ["a", "b c", "x y"]


def test_key_values() -> None:
    lex = ShellLex()
    (env,) = parse('ENV a=1 b="two words" c=$A\n').instructions
    assert parse_key_values(env, lex, ENV) == [("a", "1"), ("b", "two words"), ("c", "a")]
    (legacy,) = parse("ENV GREETING hello   world\n").instructions
    assert parse_key_values(legacy, lex, ENV) == [("GREETING", "hello   world")]
    (arg,) = parse("ARG X\n").instructions
    assert parse_key_values(arg, lex, ENV) == [("X", "\0unset")]


@given(st.text(alphabet=st.characters(blacklist_characters="\\$'\"\n\r\t "), max_size=30))
def test_plain_words_are_unchanged(word: str) -> None:
    assert ShellLex().process_word(word, ENV) == word


@given(st.lists(st.sampled_from(["RUN echo hi", "ENV A=1", "# c", "", "LABEL a=b"]), max_size=8))
def test_line_numbers_point_at_instructions(lines: list[str]) -> None:
    text = "FROM x\n" + "\n".join(lines) + "\n"
    df = parse(text)
    source = text.split("\n")
    for ins in df.instructions:
        assert source[ins.line - 1].split(" ")[0].lower() == ins.cmd
