"""Go ``text/template`` subset: table tests.

``GO_CASES`` were produced by Go 1.19's ``text/template`` with docker's template functions,
executing on the JSON below decoded into ``map[string]interface{}`` (docker's inspect
fallback; ``strict`` is ``missingkey=error``). Known, intended deviations (numbers decode
as ints, as in Docker's typed structs, not ``json.Number``; ``join`` accepts decoded lists)
are tested separately below.
"""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.cli import gotemplate
from dockyard.cli.gotemplate import (
    GoMap,
    GoStruct,
    TemplateError,
    go_format,
    go_quote,
    go_sprintf,
    render,
)

pytestmark = pytest.mark.unit

DATA: dict[str, Any] = {
    "Name": "/web",
    "Id": "abc123",
    "State": {"Status": "running", "Pid": 42, "Running": True, "Health": None},
    "Config": {
        "Cmd": ["sh", "-c", "echo hi"],
        "Labels": {"b": "2", "a": "1"},
        "Env": None,
        "Entrypoint": None,
    },
    "Count": 3,
    "Zero": 0,
    "Empty": "",
    "List": [],
    "Ratio": 1.5,
    "Html": "<a&b>",
}

# (template, strict, expected output or None, expected error or None)
GO_CASES: list[tuple[str, bool, str | None, str | None]] = [
    ("{{.Name}}", False, "/web", None),
    ("{{.State.Status}}", False, "running", None),
    ("{{json .State}}", False, '{"Health":null,"Pid":42,"Running":true,"Status":"running"}', None),
    ("{{json .Config.Cmd}}", False, '["sh","-c","echo hi"]', None),
    ("{{.Config.Cmd}}", False, "[sh -c echo hi]", None),
    ("{{.Config.Labels}}", False, "map[a:1 b:2]", None),
    ('{{index .Config.Labels "a"}}', False, "1", None),
    ("{{range .Config.Cmd}}[{{.}}]{{end}}", False, "[sh][-c][echo hi]", None),
    ("{{range $i, $e := .Config.Cmd}}{{$i}}={{$e}} {{end}}", False, "0=sh 1=-c 2=echo hi ", None),
    ("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}},{{end}}", False, "a:1,b:2,", None),
    ("{{if .State.Running}}up{{else}}down{{end}}", False, "up", None),
    (
        '{{if eq .State.Status "running"}}R{{else if eq .State.Status "exited"}}E{{else}}?{{end}}',
        False,
        "R",
        None,
    ),
    (
        '{{if eq .State.Status "exited"}}R{{else if eq .State.Status "running"}}E{{else}}?{{end}}',
        False,
        "E",
        None,
    ),
    ("{{with .State}}{{.Pid}}{{end}}", False, "42", None),
    ("{{with .Missing}}x{{else}}none{{end}}", False, "none", None),
    ("{{lower .State.Status | upper}}", False, "RUNNING", None),
    ('{{printf "%s-%d" .Name 7}}', False, "/web-7", None),
    ("{{.Missing}}", False, "<no value>", None),
    ("{{.State.Health}}", False, "<no value>", None),
    ("{{.Config.Entrypoint}}", False, "<no value>", None),
    (
        "{{.Config}}",
        False,
        "map[Cmd:[sh -c echo hi] Entrypoint:<nil> Env:<nil> Labels:map[a:1 b:2]]",
        None,
    ),
    ("{{.State}}", False, "map[Health:<nil> Pid:42 Running:true Status:running]", None),
    ("{{len .Config.Cmd}}", False, "3", None),
    ("{{.Config.Cmd | len}}", False, "3", None),
    ("{{slice .Name 1}}", False, "web", None),
    ("{{index .Config.Cmd 1}}", False, "-c", None),
    (" \n {{- .Name -}} \n ", False, "/web", None),
    ('a {{- " b " -}} c', False, "a b c", None),
    ("{{/* comment */}}x", False, "x", None),
    ("{{- /* c */ -}} y", False, "y", None),
    ("{{$x := .Name}}{{$x}}", False, "/web", None),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", False, "2", None),
    (
        '{{range .Config.Cmd}}{{if eq . "-c"}}{{continue}}{{end}}{{.}};{{end}}',
        False,
        "sh;echo hi;",
        None,
    ),
    ('{{range .Config.Cmd}}{{if eq . "-c"}}{{break}}{{end}}{{.}};{{end}}', False, "sh;", None),
    ("{{range .List}}x{{else}}empty{{end}}", False, "empty", None),
    ('{{print 1 2 "a" 3 "b" "c"}}', False, "1 2a3bc", None),
    ('{{println "a" 1}}', False, "a 1\n", None),
    (
        '{{printf "%q %v %5s|%-5s|%05d|%x|%t" .Name .Config.Cmd "ab" "cd" 42 255 true}}',
        False,
        '"/web" [sh -c echo hi]    ab|cd   |00042|ff|true',
        None,
    ),
    ('{{title "hello world-wide web"}}', False, "Hello World-Wide Web", None),
    ('{{split "a,b,c" ","}}', False, "[a b c]", None),
    ("{{pad .Name 2 1}}|{{pad .Empty 2 1}}|", False, "  /web ||", None),
    ("{{truncate .Name 3}}", False, "/we", None),
    (
        "{{json .}}",
        False,
        '{"Config":{"Cmd":["sh","-c","echo hi"],"Entrypoint":null,"Env":null,"Labels":{"a":"1","b":"2"}},"Count":3,"Empty":"","Html":"<a&b>","Id":"abc123","List":[],"Name":"/web","Ratio":1.5,"State":{"Health":null,"Pid":42,"Running":true,"Status":"running"},"Zero":0}',
        None,
    ),
    (
        "{{.Name.Foo}}",
        False,
        None,
        'template: :1:7: executing "" at <.Name.Foo>: can\'t evaluate field Foo in type interface {}',
    ),
    (
        "{{index .Config.Cmd 5}}",
        False,
        None,
        'template: :1:2: executing "" at <index .Config.Cmd 5>: error calling index: index out of range: 5',
    ),
    ("{{nosuch}}", False, None, 'template: :1: function "nosuch" not defined'),
    ("{{.Name", False, None, "template: :1: unclosed action"),
    ("{{end}}", False, None, "template: :1: unexpected {{end}}"),
    ("{{if .Name}}x", False, None, "template: :1: unexpected EOF"),
    ("{{.Ratio}}", False, "1.5", None),
    ("{{range $i, $c := .Config.Cmd}}{{if $i}},{{end}}{{$c}}{{end}}", False, "sh,-c,echo hi", None),
    ("{{(index .Config.Cmd 0)}}", False, "sh", None),
    ("{{with $x := .State}}{{$x.Status}}{{end}}", False, "running", None),
    ('{{.State.Status | printf "%s!"}}', False, "running!", None),
    ('{{"a\\tb"}}|{{`raw\\n`}}', False, "a\tb|raw\\n", None),
    ("{{'a'}}", False, "97", None),
    ("{{0x10}} {{1e3}} {{-2}} {{1.50}}", False, "16 1000 -2 1.5", None),
    ("{{.Html}}", False, "<a&b>", None),
    ("{{json .Html}}", False, '"<a&b>"', None),
    ("{{html .Html}}", False, "&lt;a&amp;b&gt;", None),
    ('{{urlquery .Html "x y"}}', False, "%3Ca%26b%3Ex+y", None),
    (
        "{{.State.Health.Status}}",
        False,
        None,
        'template: :1:8: executing "" at <.State.Health.Status>: nil pointer evaluating interface {}.Status',
    ),
    ("{{.Missing.Deeper}}", False, "<no value>", None),
    ("{{$.Name}}{{range .Config.Cmd}}{{$.Id}}{{end}}", False, "/webabc123abc123abc123", None),
    (
        "{{range $k, $v := .Config.Labels}}{{$k}}{{end}}{{$k}}",
        False,
        None,
        'template: :1: undefined variable "$k"',
    ),
    ('{{index .Config.Labels "zz"}}|', False, "<no value>|", None),
    ("{{len .Name}} {{len .Config.Labels}}", False, "4 2", None),
    ("{{.Config.Labels.a}}{{.Config.Labels.zz}}", False, "1<no value>", None),
    (
        "{{true}} {{false}} {{nil}}",
        False,
        None,
        'template: :1:21: executing "" at <nil>: nil is not a command',
    ),
    ('{{printf "%d"}}|{{printf "%s" 1 2}}', False, "%!d(MISSING)|%!s(int=1)%!(EXTRA int=2)", None),
    ('{{eq .Name "/web" "x"}} {{ne .Name "x"}}', False, "true true", None),
    ('{{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}}', False, "true true true false", None),
    ('{{if and .Name (eq .Empty "")}}both{{end}}', False, "both", None),
    ("{{range .Config.Cmd}}{{.}}{{else}}none{{end}}", False, "sh-cecho hi", None),
    ("{{with .Config.Cmd}}{{index . 2}}{{end}}", False, "echo hi", None),
    (
        "{{.Config.Cmd.X}}",
        False,
        None,
        'template: :1:9: executing "" at <.Config.Cmd.X>: can\'t evaluate field X in type interface {}',
    ),
    ('{{join .Missing ","}}', False, "", None),
    (
        '{{printf "%6.2f|%e|%g" 3.14159 1234.5 0.000012}}',
        False,
        "  3.14|1.234500e+03|1.2e-05",
        None,
    ),
    ("{{print .Config.Labels .List}}", False, "map[a:1 b:2] []", None),
    ("{{json .Missing}}", False, "null", None),
    ("{{if .State.Health}}y{{else}}n{{end}}", False, "n", None),
    (
        "{{.Missing}}",
        True,
        None,
        'template: :1:2: executing "" at <.Missing>: map has no entry for key "Missing"',
    ),
    ("{{.Config.Entrypoint}}", True, "<no value>", None),
    (
        "{{.Config.Labels.zz}}",
        True,
        None,
        'template: :1:9: executing "" at <.Config.Labels.zz>: map has no entry for key "zz"',
    ),
    ("{{.State.Health}}", True, "<no value>", None),
    (
        "{{.Missing.Deeper}}",
        True,
        None,
        'template: :1:10: executing "" at <.Missing.Deeper>: map has no entry for key "Missing"',
    ),
    ("{{json .State}}", True, '{"Health":null,"Pid":42,"Running":true,"Status":"running"}', None),
]


@pytest.mark.parametrize(("tmpl", "strict", "out", "error"), GO_CASES)
def test_matches_go_text_template(
    tmpl: str, strict: bool, out: str | None, error: str | None
) -> None:
    if error is not None:
        with pytest.raises(TemplateError) as info:
            gotemplate.parse(tmpl).execute(DATA, strict=strict)
        assert str(info.value) == error
    else:
        assert gotemplate.parse(tmpl).execute(DATA, strict=strict) == out


def test_numbers_behave_like_typed_ints() -> None:
    assert render('{{not .Zero}} {{printf "%d|%s" .Count .Count}}', DATA) == "true 3|%!s(int=3)"
    assert render("{{if gt .Count 2}}many{{end}}", DATA) == "many"


def test_join_accepts_decoded_lists_like_typed_string_slices() -> None:
    assert render('{{join .Config.Cmd ","}}', DATA) == "sh,-c,echo hi"
    assert render('{{join .Config.Env ","}}', DATA) == ""


# --------------------------------------------------------------------------- typed mode


def test_typed_mode_uses_go_field_names_and_fails_on_unknown_fields() -> None:
    data = {"Id": "abc", "HostConfig": {"Dns": ["1.1.1.1"]}}
    assert render("{{.ID}} {{.HostConfig.DNS}}", data) == "<no value> <no value>"
    tmpl = gotemplate.parse("{{.ID}} {{.HostConfig.DNS}}")
    assert tmpl.execute(data, typed=True) == "abc [1.1.1.1]"
    with pytest.raises(TemplateError, match="can't evaluate field Id in type"):
        gotemplate.parse("{{.Id}}").execute(data, typed=True)


def test_typed_mode_nil_slices_maps_and_structs_print_like_go() -> None:
    data = {
        "Config": {"Entrypoint": None, "Volumes": None, "Labels": {"b": "2", "a": "1"}},
        "State": {"Status": "running", "Pid": 7, "Health": None},
        "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {}}},
    }
    tmpl = gotemplate.parse(
        "{{.Config.Entrypoint}}|{{.Config.Volumes}}|{{.Config.Labels}}|{{.State}}|"
        "{{.HostConfig.LogConfig}}|{{.Config.Labels.zz}}|{{json .Config.Entrypoint}}"
    )
    assert tmpl.execute(data, typed=True) == (
        "[]|map[]|map[a:1 b:2]|{running 7 <nil>}|{json-file map[]}|<no value>|null"
    )


def test_typed_json_keeps_struct_order_and_sorts_maps() -> None:
    data = {"State": {"Status": "up", "Pid": 1}, "Labels": {"b": "2", "a": "1"}}
    tmpl = gotemplate.parse("{{json .State}} {{json .Labels}} {{json .}}")
    assert tmpl.execute(data, typed=True) == (
        '{"Status":"up","Pid":1} {"a":"1","b":"2"} '
        '{"State":{"Status":"up","Pid":1},"Labels":{"a":"1","b":"2"}}'
    )


def test_go_struct_omitempty_applies_to_json_only() -> None:
    client = GoStruct(
        {"Platform": None, "Version": "1", "GitCommit": ""},
        omitempty=frozenset(["Platform", "GitCommit"]),
    )
    tmpl = gotemplate.parse("{{json .}}|{{if ne .Platform nil}}p{{end}}{{.GitCommit}}|")
    assert tmpl.execute(client, typed=True) == '{"Version":"1"}||'


def test_go_map_missing_key_is_no_value_in_typed_mode() -> None:
    assert gotemplate.parse('{{.zz}}|{{index . "zz"}}').execute(GoMap({"a": "1"}), typed=True) == (
        "<no value>|"
    )


# --------------------------------------------------------------------------- objects


class Row:
    go_type = "*formatter.Row"

    def __init__(self) -> None:
        self.used: list[str] = []

    def template_field(self, name: str) -> Any:
        self.used.append(name)
        if name == "ID":
            return "0123456789ab"
        if name == "Label":
            return lambda key: {"com.x": "y"}.get(key, "")
        raise KeyError(name)

    def template_json(self) -> Any:
        return {"ID": "0123456789ab", "B": "<b>"}


def test_template_objects_fields_methods_and_json() -> None:
    row = Row()
    assert render('{{.ID}} {{.Label "com.x"}}|{{json .}}', row) == (
        '0123456789ab y|{"B":"\\u003cb\\u003e","ID":"0123456789ab"}'
    )
    with pytest.raises(TemplateError, match=r"can't evaluate field Nope in type \*formatter.Row"):
        render("{{.Nope}}", row)


# --------------------------------------------------------------------------- pieces


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("sleep 300", '"sleep 300"'),
        ('sh -c "x"', '"sh -c \\"x\\""'),
        ("a\tb\n\x01", '"a\\tb\\n\\x01"'),
        ("café…", '"café…"'),
        ("\u200b", '"\\u200b"'),
    ],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "<nil>"),
        (True, "true"),
        (1.0, "1"),
        (1.5, "1.5"),
        (1e21, "1e+21"),
        (1234567.0, "1.234567e+06"),
        (123456.0, "123456"),
        (123456789.0, "1.23456789e+08"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        ([1, "a", None], "[1 a <nil>]"),
        ({"b": 1, "a": [True]}, "map[a:[true] b:1]"),
    ],
)
def test_go_format(value: Any, text: str) -> None:
    assert go_format(value) == text


def test_go_sprintf_missing_and_extra_arguments() -> None:
    assert go_sprintf("%s %d", ["a"]) == "a %!d(MISSING)"
    assert go_sprintf("%s", ["a", 2]) == "a%!(EXTRA int=2)"
    assert go_sprintf("%-4s|%4d|%.2f|%%", ["ab", 7, 1.005]) == "ab  |   7|1.00|%"


def test_header_functions_leave_their_argument_alone() -> None:
    tmpl = gotemplate.parse("{{upper .ID}}\t{{json .Names}}")
    headers = {"ID": "CONTAINER ID", "Names": "NAMES"}
    assert tmpl.execute(headers, funcs=gotemplate.HEADER_FUNCS) == "CONTAINER ID\tNAMES"


def test_named_template_errors_carry_the_name() -> None:
    with pytest.raises(TemplateError, match=r'^template: version:1:9: executing "version" at'):
        gotemplate.parse("{{.Server.Foo}}", name="version").execute(
            GoStruct({"Server": GoStruct({}, "*types.Version")}), typed=True
        )
