"""Client input quoted in error messages: bounded, escaped, never an object's repr."""

from service.client_text import EXCERPT_CHARS, excerpt


def test_a_long_string_is_cut_to_the_excerpt_length_and_marked():
    quoted = excerpt("a" * 10_000)
    assert quoted == "'" + "a" * EXCERPT_CHARS + "…'"


def test_control_characters_and_backslashes_are_escaped():
    assert excerpt("x\x00\n\\\u2028") == "'x\\x00\\x0a\\x5c\\u2028'"


def test_bytes_are_quoted_byte_by_byte():
    assert excerpt(b"\x93NUMPY\xff") == "'\\x93NUMPY\\xff'"


def test_an_object_is_named_by_its_type_never_formatted():
    assert excerpt(object()) == "(a value of type object)"  # type: ignore[arg-type]


def test_a_huge_integer_is_described_not_converted():
    assert excerpt(10**5000) == f"(an integer of {(10**5000).bit_length()} bits)"


def test_json_scalars_read_as_json():
    assert [excerpt(None), excerpt(True), excerpt(2.5)] == ["null", "true", "'2.5'"]
