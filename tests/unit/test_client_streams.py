"""Pure pieces of the client: framing, JSON progress decoding, wire encodings, hosts."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.client import (
    DEFAULT_HOST,
    FrameDecoder,
    JSONMessageDecoder,
    StreamError,
    demux,
    encode_frame,
    iter_json_messages,
    parse_host,
    resolve_host,
)
from dockyard.client.wire import encode_filters, encode_query, go_json, parse_filter_args
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.unit


def reader(chunks: list[bytes]) -> Callable[[], bytes]:
    it = iter(chunks)
    return lambda: next(it, b"")


# --------------------------------------------------------------------------- frames


def test_frame_layout_matches_the_wire_notes() -> None:
    assert encode_frame(1, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert encode_frame(2, b"err\n") == b"\x02\x00\x00\x00\x00\x00\x00\x04err\n"


@given(
    st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=300)), max_size=8),
    st.integers(min_value=1, max_value=50),
)
def test_decoder_reassembles_frames_split_anywhere(
    frames: list[tuple[int, bytes]], step: int
) -> None:
    wire = b"".join(encode_frame(s, p) for s, p in frames)
    decoder = FrameDecoder()
    got: list[tuple[int, bytes]] = []
    for i in range(0, len(wire), step):
        got += decoder.feed(wire[i : i + step])
    decoder.close()
    assert got == frames


def test_truncated_frame_is_an_error() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame(1, b"hello")[:-1]) == []
    with pytest.raises(StreamError):
        decoder.close()


def test_unknown_stream_id_is_an_error() -> None:
    with pytest.raises(StreamError, match="Unrecognized input header: 9"):
        FrameDecoder().feed(b"\x09\x00\x00\x00\x00\x00\x00\x01x")


def test_demux_routes_stdout_and_stderr() -> None:
    out, err = io.BytesIO(), io.BytesIO()
    wire = encode_frame(2, b"err\n") + encode_frame(1, b"out\n") + encode_frame(0, b"in?\n")
    demux(reader([wire[:5], wire[5:]]), out, err)
    assert out.getvalue() == b"out\nin?\n"
    assert err.getvalue() == b"err\n"


def test_demux_system_error_frame_raises_the_daemon_message() -> None:
    with pytest.raises(StreamError, match=r"^boom$"):
        demux(reader([encode_frame(3, b"boom")]), io.BytesIO(), io.BytesIO())


# --------------------------------------------------------------------------- JSON messages


def test_json_messages_split_across_reads_and_separators() -> None:
    wire = b'{"status":"Pulling from x","id":"latest"}\r\n{"status":"Digest: sha256:ab"}\r\n'
    wire += '{"stream":"caf\u00e9 \\u003c\\u003e\\n"}'.encode()
    chunks = [wire[i : i + 7] for i in range(0, len(wire), 7)]
    assert list(iter_json_messages(reader(chunks))) == [
        {"status": "Pulling from x", "id": "latest"},
        {"status": "Digest: sha256:ab"},
        {"stream": "café <>\n"},
    ]


def test_json_messages_without_separators() -> None:
    assert JSONMessageDecoder().feed(b'{"a":1}{"b":2}') == [{"a": 1}, {"b": 2}]


def test_truncated_json_message_is_an_error() -> None:
    with pytest.raises(StreamError):
        list(iter_json_messages(reader([b'{"status":"x"}\r\n{"sta'])))


# --------------------------------------------------------------------------- wire


def test_go_json_escapes_like_encoding_json() -> None:
    value = {"Cmd": ["a > b && c < d"], "U": "\u2028", "e": "é", "n": None, "t": True}
    assert go_json(value) == (
        '{"Cmd":["a \\u003e b \\u0026\\u0026 c \\u003c d"],"U":"\\u2028","e":"é","n":null,"t":true}'
    )
    assert go_json({"x": "<>"}, escape_html=False) == '{"x":"<>"}'


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"all": True, "size": False, "limit": None}, "all=1"),
        ({"t": 0, "signal": "KILL"}, "signal=KILL&t=0"),
        ({"name": "bad name"}, "name=bad+name"),
        ({"fromImage": "127.0.0.1:5921/x", "tag": "1"}, "fromImage=127.0.0.1%3A5921%2Fx&tag=1"),
        ({"names": ["a:1", "b"]}, "names=a%3A1&names=b"),
        ({"quiet": "0"}, "quiet=0"),
    ],
)
def test_encode_query(params: dict[str, object], expected: str) -> None:
    assert encode_query(params) == expected  # type: ignore[arg-type]


def test_filters_are_maps_of_booleans() -> None:
    assert encode_filters({"name": ["wp"]}) == '{"name":{"wp":true}}'
    assert parse_filter_args(["name=x", "Label = a=b ", "name=y"]) == {
        "name": ["x", "y"],
        "label": ["a=b"],
    }
    with pytest.raises(ValueError, match="bad format of filter"):
        parse_filter_args(["bogus"])


# --------------------------------------------------------------------------- hosts


def test_host_precedence_flag_then_dockyard_then_docker() -> None:
    env = {"DOCKYARD_HOST": "unix:///a.sock", "DOCKER_HOST": "unix:///b.sock"}
    assert resolve_host("unix:///flag.sock", env) == "unix:///flag.sock"
    assert resolve_host(None, env) == "unix:///a.sock"
    assert resolve_host(None, {"DOCKER_HOST": "unix:///b.sock"}) == "unix:///b.sock"
    assert resolve_host(None, {}) == DEFAULT_HOST == "unix:///run/dockyard/dockyard.sock"


@pytest.mark.parametrize(
    ("text", "scheme", "address", "port"),
    [
        ("unix:///run/x.sock", "unix", "/run/x.sock", 0),
        ("unix://", "unix", "/run/dockyard/dockyard.sock", 0),
        ("tcp://127.0.0.1:2376", "tcp", "127.0.0.1", 2376),
        ("tcp://localhost", "tcp", "localhost", 2375),
        ("127.0.0.1:9", "tcp", "127.0.0.1", 9),
        ("tcp://[::1]:80", "tcp", "::1", 80),
    ],
)
def test_parse_host(text: str, scheme: str, address: str, port: int) -> None:
    endpoint = parse_host(text)
    assert (endpoint.scheme, endpoint.address, endpoint.port) == (scheme, address, port)


@pytest.mark.parametrize("text", ["ssh://me@host", "tcp://h:99999", "tcp://", "fd://"])
def test_parse_host_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_host(text)
