"""The Dockerfile parser (dockerfile.py), its word expansion (words.py) and .dockerignore patterns (context.py).

Pure text in, structures out: no kernel state, so these run anywhere.  The
cases follow the Dockerfile reference (docs.docker.com/reference/dockerfile)
and what docker's own parser does with them.
"""
import pytest

from minidocker.build import context, words
from minidocker.build import dockerfile as d
from minidocker.errors import InvalidArgument


def cmds(text):
    return [(i.cmd, i.line, i.args) for i in d.parse(text).instructions]


# -- lines, comments, continuations, directives ------------------------------------------

def test_instructions_keep_their_first_line_and_are_case_insensitive():
    text = "# a comment\n\nfrom busybox\n\nrun echo a \\\n    b \\\n    c\nCmd [\"sh\"]\n"
    assert cmds(text) == [("FROM", 3, ["busybox"]), ("RUN", 5, "echo a     b     c"),
                          ("CMD", 8, ["sh"])]


def test_comment_lines_inside_a_continuation_vanish():
    text = "FROM busybox\nRUN echo one \\\n# not part of the command\n  && echo two\n"
    assert d.parse(text).instructions[1].args == "echo one   && echo two"


def test_empty_continuation_line_warns_and_goes_on():
    parsed = d.parse("FROM busybox\nRUN echo a \\\n\n  b\n")
    assert parsed.instructions[1].args == "echo a   b"
    assert parsed.warnings and "Empty continuation line" in parsed.warnings[0]


def test_trailing_blanks_after_the_escape_still_continue():
    assert d.parse("FROM busybox\nRUN echo a \\  \t\nb\n").instructions[1].args == "echo a b"


def test_escape_directive_backtick():
    text = "# escape=`\nFROM busybox\nCOPY . C:\\dir\\\nRUN echo a `\n  b\n"
    parsed = d.parse(text)
    assert parsed.escape == "`"
    assert [i.args for i in parsed.instructions] == [["busybox"], [".", "C:\\dir\\"], "echo a   b"]


def test_directive_only_before_anything_else():
    parsed = d.parse("FROM busybox\n# escape=`\nRUN echo a \\\n b\n")
    assert parsed.escape == "\\" and parsed.instructions[1].args == "echo a  b"
    # after a plain comment it is a comment too
    assert d.parse("# hello\n# escape=`\nFROM busybox\n").escape == "\\"
    # an unknown directive ends the directives
    assert d.parse("# foo=bar\n# escape=`\nFROM busybox\n").escape == "\\"


def test_directive_errors():
    with pytest.raises(InvalidArgument, match="line 2: only one escape parser directive"):
        d.parse("# escape=`\n# escape=\\\nFROM busybox\n")
    with pytest.raises(InvalidArgument, match="line 1: invalid escape token"):
        d.parse("# escape=x\nFROM busybox\n")


def test_crlf_and_byte_order_mark():
    assert cmds("\ufeffFROM busybox\r\nRUN true\r\n") == [("FROM", 1, ["busybox"]), ("RUN", 2, "true")]


def test_empty_dockerfile_is_refused():
    with pytest.raises(InvalidArgument, match="cannot be empty"):
        d.parse("# only a comment\n\n")


# -- JSON (exec) form and shell form ----------------------------------------------------------

@pytest.mark.parametrize("text, args, is_json", [
    ('CMD ["echo", "a b"]', ["echo", "a b"], True),
    ("CMD echo a b", "echo a b", False),
    ("CMD [echo, a]", "[echo, a]", False),                # not JSON: docker runs it through sh
    ('CMD ["echo", "a"] extra', '["echo", "a"] extra', False),
    ('RUN ["/bin/echo", "\\u00e9"]', ["/bin/echo", "\u00e9"], True),
    ('ENTRYPOINT []', [], True),
])
def test_exec_form_is_a_json_array_of_strings(text, args, is_json):
    ins = d.parse("FROM busybox\n" + text).instructions[1]
    assert (ins.args, ins.json) == (args, is_json)


def test_json_array_of_non_strings_is_an_error():
    with pytest.raises(InvalidArgument, match="line 2: when using JSON array syntax"):
        d.parse('FROM busybox\nRUN ["echo", 1]\n')


def test_shell_needs_json():
    with pytest.raises(InvalidArgument, match="line 2: SHELL requires the arguments to be in JSON form"):
        d.parse("FROM busybox\nSHELL /bin/sh -c\n")


def test_copy_json_form_keeps_spaces():
    ins = d.parse('FROM busybox\nCOPY ["a file", "/dest dir/"]\n').instructions[1]
    assert ins.args == ["a file", "/dest dir/"] and ins.json


# -- ENV, LABEL, ARG ---------------------------------------------------------------------------

def test_env_forms():
    (_, _, pairs), = cmds('ENV a=1 b="two words" c=three\\ words')[0:1]
    assert pairs == [("a", "1"), ("b", '"two words"'), ("c", "three\\ words")]
    assert cmds("ENV LEGACY a value with  spaces")[0][2] == [("LEGACY", "a value with  spaces")]
    with pytest.raises(InvalidArgument, match="line 1: ENV must have two arguments"):
        d.parse("ENV LONELY\n")
    with pytest.raises(InvalidArgument, match="can't find = in 'b'"):
        d.parse("ENV a=1 b\n")


def test_arg_forms():
    assert cmds("ARG A\nARG B=2 C='x y'\nFROM busybox")[:2] == [("ARG", 1, ["A"]), ("ARG", 2, ["B=2", "C='x y'"])]


# -- errors name the line --------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("FROM busybox\nRUN true\nFOO bar\n", "line 3: unknown instruction: FOO"),
    ("FROM busybox\nRUNN true\n", "line 2: unknown instruction: RUNN (did you mean run?)"),
    ("FROM busybox\n\nHEALTHCHECK CMD true\n", "line 3: HEALTHCHECK is not supported"),
    ("FROM busybox AS\n", "line 1: FROM requires either one or three arguments"),
    ("FROM busybox as 1abc\n", "line 1: invalid name for build stage"),
    ("FROM busybox\nCOPY onlyone\n", "line 2: COPY requires at least two arguments"),
    ("FROM busybox\nCOPY --form=x a b\n", "line 2: unknown flag: --form"),
    ("FROM busybox\nRUN --mount=type=cache,target=/x true\n", "line 2: RUN --mount is not supported"),
    ("FROM busybox\nCOPY --from a b\n", "line 2: missing a value on flag: --from"),
    ("FROM busybox\nWORKDIR\n", "line 2: WORKDIR requires exactly one argument"),
    ("FROM busybox\nRUN\n", "line 2: RUN requires at least one argument"),
])
def test_errors_name_the_line(text, message):
    with pytest.raises(InvalidArgument) as e:
        d.parse(text)
    assert str(e.value).startswith("Dockerfile parse error line")
    assert message in str(e.value)


def test_flags_are_parsed():
    ins = d.parse("FROM busybox\nCOPY --from=build --chown=user:group a /b\n").instructions[1]
    assert ins.flags == {"from": "build", "chown": "user:group"} and ins.args == ["a", "/b"]


# -- variables ---------------------------------------------------------------------------------

ENV = {"NAME": "mini", "EMPTY": "", "SPACED": "a b"}


@pytest.mark.parametrize("word, result", [
    ("$NAME", "mini"), ("${NAME}docker", "minidocker"), ("$NAME-x", "mini-x"),
    ("$UNSET", ""), ("a$", "a$"), ("$1x", "x"),
    ("${UNSET:-default}", "default"), ("${EMPTY:-default}", "default"), ("${EMPTY-default}", ""),
    ("${NAME:-default}", "mini"), ("${NAME:+set}", "set"), ("${UNSET:+set}", ""),
    ("${EMPTY+set}", "set"), ("${UNSET:-${NAME}2}", "mini2"),
    ("\\$NAME", "$NAME"), ("\\${NAME}", "${NAME}"),
    ("'$NAME'", "$NAME"), ('"$NAME"', "mini"), ('"a \\" b"', 'a " b'), ('"a\\b"', "a\\b"),
    ("a\\ b", "a b"), ('x"y z"w', "xy zw"),
])
def test_expand(word, result):
    assert words.expand(word, ENV) == result


def test_expand_with_backtick_escape():
    assert words.expand("`$NAME C:\\x", ENV, escape="`") == "$NAME C:\\x"


@pytest.mark.parametrize("word, message", [
    ("${UNSET:?must be set}", "UNSET: must be set"),
    ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ("${UNSET?}", "UNSET: is not allowed to be unset"),
    ("${NAME", "missing '}'"), ("${}", "bad substitution"), ("${NAME/a/b}", "unsupported modifier"),
    ('"open', "matching double-quote"), ("'open", "matching single-quote"),
])
def test_expand_errors(word, message):
    with pytest.raises(InvalidArgument, match="failed to process") as e:
        words.expand(word, ENV)
    assert message in str(e.value)


def test_expand_words_splits_unquoted_values_only():
    assert words.expand_words('a "$SPACED" $SPACED \'c d\'', ENV) == ["a", "a b", "a", "b", "c d"]
    assert words.expand_words('"" x', ENV) == ["", "x"]


# -- .dockerignore -------------------------------------------------------------------------------

def ignore(patterns, path):
    return context.ignored(path, context.parse_ignore(patterns))


@pytest.mark.parametrize("patterns, path, excluded", [
    ("*.md", "README.md", True),
    ("*.md", "docs/README.md", False),          # * does not cross a /
    ("**/*.md", "docs/deep/README.md", True),
    ("**/*.md", "README.md", True),
    ("build", "build/out/x.o", True),           # a directory takes what is below it
    ("/build", "build", True),                  # a leading / is the context's root
    ("./src/../tmp", "tmp/x", True),            # patterns are cleaned like paths
    ("src/*.log", "src/a.log", True),
    ("src/*.log", "src/sub/a.log", False),
    ("a?c", "abc", True), ("a?c", "a/c", False),
    ("[ab].txt", "b.txt", True), ("[^ab].txt", "c.txt", True), ("[^ab].txt", "a.txt", False),
    ("*.md\n!README.md", "README.md", False),   # the last matching pattern wins
    ("*.md\n!README.md", "CHANGES.md", True),
    ("!README.md\n*.md", "README.md", True),
    ("# comment\n\n  x  ", "x", True),
    ("docs/**", "docs/a/b", True), ("docs/**", "docsx", False),
])
def test_dockerignore(patterns, path, excluded):
    assert ignore(patterns, path) is excluded


def test_dockerignore_exceptions_are_reported():
    assert context.has_exceptions(context.parse_ignore("x\n!x/keep"))
    assert not context.has_exceptions(context.parse_ignore("x\ny"))
