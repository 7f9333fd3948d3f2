"""Words of a Dockerfile: quotes, escapes and $variables, as a shell reads them.

Layer: build (docker's frontend/dockerfile/shell package, the "shell lexer"
the classic builder and BuildKit share).  The builder expands an instruction's
words only when the instruction runs, because what $VAR holds depends on the
ARG and ENV instructions before it; RUN, CMD and ENTRYPOINT are left alone
(the shell in the container expands them).

Handled: 'single' and "double" quotes, the escape character (`\\` or the one
`# escape=` picked), $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt}, ${VAR:?error}
and their forms without the colon (sh(1) "Parameter Expansion").  Not handled,
as in docker: globbing, command substitution, arithmetic.
Reference: docs.docker.com/reference/dockerfile/#environment-replacement
"""
from minidocker.errors import InvalidArgument


class _Lexer:
    """One pass over a word, the way a POSIX shell reads it (sh(1) "Quoting",
    "Parameter Expansion"), and no further: no globbing, no commands."""

    def __init__(self, text, env, escape):
        self.text, self.env, self.escape, self.pos = text, env, escape, 0

    def peek(self):
        return self.text[self.pos] if self.pos < len(self.text) else None

    def next(self):
        ch = self.peek()
        self.pos += 1
        return ch

    def run(self, stop=None):
        """Read until `stop` (or the end); return (text, words)."""
        out, words, word, in_word = [], [], [], False

        def add(s, split):              # expanded $VAR text splits at blanks; quoted text does not
            nonlocal in_word
            for ch in s:
                if split and ch.isspace():
                    if in_word:
                        words.append("".join(word))
                        word.clear()
                        in_word = False
                else:
                    word.append(ch)
                    in_word = True
        while self.peek() is not None:
            ch = self.peek()
            if stop is not None and ch == stop:
                self.next()
                return "".join(out), words
            if ch == "$":
                s = self.dollar()
                out.append(s)
                add(s, True)
            elif ch == "'":
                s = self.single_quoted()
                out.append(s)
                add(s, False)
                in_word = True
            elif ch == '"':
                s = self.double_quoted()
                out.append(s)
                add(s, False)
                in_word = True
            else:
                self.next()
                if ch == self.escape:
                    ch = self.next()
                    if ch is None:
                        break
                    add(ch, False)
                else:
                    add(ch, True)
                out.append(ch)
        if stop is not None:
            raise InvalidArgument(f"unexpected end of statement while looking for matching {stop}")
        if in_word:
            words.append("".join(word))
        return "".join(out), words

    def single_quoted(self):
        self.next()
        start = self.pos
        end = self.text.find("'", start)
        if end < 0:
            raise InvalidArgument("unexpected end of statement while looking for matching single-quote")
        self.pos = end + 1
        return self.text[start:end]

    def double_quoted(self):
        self.next()
        out = []
        while True:
            ch = self.peek()
            if ch is None:
                raise InvalidArgument("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.escape and self.peek() in ('"', "$", self.escape):
                ch = self.next()                        # inside "...", only these are escaped
            out.append(ch)

    def name(self):
        start = self.pos
        if self.peek() is not None and self.peek().isdigit():
            while self.peek() is not None and self.peek().isdigit():
                self.next()
        else:
            while self.peek() is not None and (self.peek().isalnum() or self.peek() == "_"):
                self.next()
        return self.text[start:self.pos]

    def dollar(self):
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.next()
        if self.peek() in (None, "{", "}", ":"):
            raise InvalidArgument("syntax error: bad substitution" if self.peek() else
                                  "syntax error: missing '}'")
        name = self.name()
        op = self.next()
        if op is None:
            raise InvalidArgument("syntax error: missing '}'")
        if op == "}":
            return self.env.get(name, "")
        colon = op == ":"
        if colon:
            op = self.next()
        if op not in ("-", "+", "?"):
            raise InvalidArgument(f"unsupported modifier ({':' if colon else ''}{op or ''}) in substitution")
        try:
            word, _ = self.run(stop="}")
        except InvalidArgument:
            if self.peek() is None:
                raise InvalidArgument("syntax error: missing '}'") from None
            raise
        value = self.env.get(name)
        unset = value is None or (colon and value == "")
        if op == "-":
            return word if unset else value
        if op == "+":
            return "" if unset else word
        if unset:                                       # ${VAR:?message}
            empty = "empty" if value is not None else "unset"
            raise InvalidArgument(f"{name}: {word or f'is not allowed to be {empty}'}")
        return value


def expand(word: str, env: dict, escape: str = "\\") -> str:
    """Replace variables and remove quotes and escapes; one word in, one string out."""
    try:
        return _Lexer(word, env, escape).run()[0]
    except InvalidArgument as e:
        raise InvalidArgument(f"failed to process {word!r}: {e}") from None


def expand_words(text: str, env: dict, escape: str = "\\") -> list[str]:
    """Like expand(), then split into words at blanks that are not quoted."""
    try:
        return _Lexer(text, env, escape).run()[1]
    except InvalidArgument as e:
        raise InvalidArgument(f"failed to process {text!r}: {e}") from None
