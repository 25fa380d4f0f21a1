"""Lines for terminals: what a damaged file's name or bytes hold never reaches one raw."""

from flows.report import printable


def test_control_characters_are_written_as_escapes():
    line = "cc: evil\x1b[2J.warc.gz: not a WARC record: \x00\x07 (extract:damaged_record)"
    shown = printable(line)
    assert (
        shown == "cc: evil\\x1b[2J.warc.gz: not a WARC record: \\x00\\x07 (extract:damaged_record)"
    )
    assert shown.isprintable() and printable("café ünïcode") == "café ünïcode"
