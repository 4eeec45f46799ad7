"""The listening query language: parse once, match millions of mentions fast.

Syntax (operators are upper-case so the words "and", "or", "not" can still be searched for):

    acme AND (outage OR "is down") NOT test lang:en
    #acmecloud OR @acme         -- hashtags and handles are terms
    acme*                       -- prefix
    -spam                       -- same as NOT spam

Precedence: NOT binds tightest, then AND (also implicit between adjacent terms), then OR.
Matching is case-insensitive and on whole words: `acme` matches "Acme's", "#acme", "@acme"
and "acme.com", but not "acmeville"; `#acme` matches only the hashtag. A phrase matches its
words in order, separated by anything that is not a word character.

A syntax error raises `QuerySyntaxError` with the 1-based column it points at, so the UI and
the API can show "Unbalanced parenthesis at column 17" next to the field.

Matching works on a `Prepared` text (its set of tokens and its folded form), computed once
per mention and shared by every query, so N queries cost N set look-ups, not N regex scans,
except for phrases, which use one precompiled regex each."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_QUERY = 2000
MAX_TERMS = 200

# A token of text: an optional # or @, then word characters, possibly joined by . ' ’ - @
# (acme.com, o'brien, e-mail, @jane@mastodon.social).
_TOKEN = re.compile(r"[#@]?\w+(?:[.'’\-@]\w+)*")
_SUBWORD = re.compile(r"\w+")
_LANG = re.compile(r"lang:([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?)$")


class QuerySyntaxError(ValueError):
    def __init__(self, message: str, column: int):
        super().__init__(f"{message} at column {column}")
        self.message = message
        self.column = column

    @property
    def text(self) -> str:
        return str(self)


# --- AST -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    value: str  # folded; may start with # or @; may end with * (prefix)


@dataclass(frozen=True)
class Phrase:
    words: tuple[str, ...]


@dataclass(frozen=True)
class Lang:
    code: str


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Term | Phrase | Lang | Not | And | Or


# --- tokenizer ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
    kind: str  # ( ) AND OR NOT WORD PHRASE LANG
    value: str
    col: int  # 1-based


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()":
            toks.append(_Tok(ch, ch, i + 1))
            i += 1
            continue
        if ch in '"“”':
            end = i + 1
            while end < n and text[end] not in '"“”':
                end += 1
            if end >= n:
                raise QuerySyntaxError("Unterminated quote", i + 1)
            toks.append(_Tok("PHRASE", text[i + 1 : end], i + 1))
            i = end + 1
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] not in '()"“”':
            i += 1
        word = text[start:i]
        if word in ("AND", "OR", "NOT"):
            toks.append(_Tok(word, word, start + 1))
        elif word == "&&":
            toks.append(_Tok("AND", word, start + 1))
        elif word == "||":
            toks.append(_Tok("OR", word, start + 1))
        elif word.startswith("-") and len(word) > 1:
            toks.append(_Tok("NOT", "-", start + 1))
            toks.append(_Tok("WORD", word[1:], start + 2))
        elif word.lower().startswith("lang:"):
            toks.append(_Tok("LANG", word, start + 1))
        else:
            toks.append(_Tok("WORD", word, start + 1))
    return toks


# --- parser ---------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, toks: list[_Tok]):
        self.text = text
        self.toks = toks
        self.i = 0
        self.terms = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def end_col(self) -> int:
        return len(self.text.rstrip()) + 1

    def parse(self) -> Node:
        if not self.toks:
            raise QuerySyntaxError("The query is empty", 1)
        node = self.parse_or()
        tok = self.peek()
        if tok is not None:
            if tok.kind == ")":
                raise QuerySyntaxError("Unbalanced parenthesis", tok.col)
            raise QuerySyntaxError(f"Unexpected {tok.value!r}", tok.col)  # pragma: no cover
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.i += 1
            nxt = self.peek()
            if nxt is None or nxt.kind in (")", "OR", "AND"):
                raise QuerySyntaxError("OR needs a term after it", nxt.col if nxt else tok.col)
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self) -> Node:
        children = [self.parse_unary()]
        while (tok := self.peek()) is not None and tok.kind not in ("OR", ")"):
            if tok.kind == "AND":
                self.i += 1
                nxt = self.peek()
                if nxt is None or nxt.kind in (")", "OR", "AND"):
                    raise QuerySyntaxError("AND needs a term after it", nxt.col if nxt else tok.col)
            children.append(self.parse_unary())
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_unary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise QuerySyntaxError("A term is missing", self.end_col())
        if tok.kind == "NOT":
            self.i += 1
            nxt = self.peek()
            if nxt is None or nxt.kind in (")", "OR", "AND"):
                raise QuerySyntaxError("NOT needs a term after it", nxt.col if nxt else tok.col)
            return Not(self.parse_unary())
        return self.parse_primary()

    def parse_primary(self) -> Node:
        tok = self.peek()
        assert tok is not None
        if tok.kind == "(":
            self.i += 1
            if (nxt := self.peek()) is not None and nxt.kind == ")":
                raise QuerySyntaxError("Empty parentheses", tok.col)
            if nxt is None:
                raise QuerySyntaxError("Unbalanced parenthesis", tok.col)
            node = self.parse_or()
            close = self.peek()
            if close is None or close.kind != ")":
                raise QuerySyntaxError("Unbalanced parenthesis", tok.col)
            self.i += 1
            return node
        if tok.kind == ")":
            raise QuerySyntaxError("Unbalanced parenthesis", tok.col)
        if tok.kind in ("AND", "OR"):
            raise QuerySyntaxError(f"{tok.kind} needs a term before it", tok.col)
        self.i += 1
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QuerySyntaxError(f"A query has at most {MAX_TERMS} terms", tok.col)
        if tok.kind == "LANG":
            m = _LANG.match(tok.value.lower())
            if not m:
                raise QuerySyntaxError("lang: needs a language code such as lang:en", tok.col)
            return Lang(m.group(1).split("-")[0])
        if tok.kind == "PHRASE":
            words = tuple(_SUBWORD.findall(tok.value.casefold()))
            if not words:
                raise QuerySyntaxError("The phrase is empty", tok.col)
            return Phrase(words) if len(words) > 1 else Term(words[0])
        return self.word(tok)

    def word(self, tok: _Tok) -> Node:
        raw = tok.value.casefold()
        prefix = raw.endswith("*")
        core = raw.rstrip("*")
        sigil = core[:1] if core[:1] in ("#", "@") else ""
        body = core[len(sigil) :]
        if not body or not _TOKEN.fullmatch(sigil + body):
            parts = _SUBWORD.findall(body)
            if not parts:
                raise QuerySyntaxError(f"{tok.value!r} is not a searchable term", tok.col)
            if len(parts) > 1 and not sigil and not prefix:
                return Phrase(tuple(parts))  # "acme/cloud" reads as the phrase "acme cloud"
            body = "".join(parts)
        if prefix and len(body) < 2:
            raise QuerySyntaxError("A prefix* needs at least two letters", tok.col)
        return Term(sigil + body + ("*" if prefix else ""))


def parse(text: str) -> Node:
    """Parse a query into its AST; raises QuerySyntaxError pointing at the column."""
    if text is None:
        raise QuerySyntaxError("The query is empty", 1)
    if len(text) > MAX_QUERY:
        raise QuerySyntaxError(f"The query is longer than {MAX_QUERY} characters", MAX_QUERY + 1)
    toks = _tokenize(text)
    node = _Parser(text, toks).parse()
    if not _has_positive(node):
        raise QuerySyntaxError("The query only excludes; add a term to look for", 1)
    return node


def _has_positive(node: Node) -> bool:
    if isinstance(node, Term | Phrase):
        return True
    if isinstance(node, Lang | Not):
        return False
    if isinstance(node, And):
        return any(_has_positive(c) for c in node.children)
    return all(_has_positive(c) for c in node.children)


def positive_terms(node: Node) -> list[str]:
    """The words, hashtags and phrases a query looks for (what a platform search is asked for)."""
    out: list[str] = []

    def walk(n: Node) -> None:
        if isinstance(n, Term):
            out.append(n.value.rstrip("*"))
        elif isinstance(n, Phrase):
            out.append('"' + " ".join(n.words) + '"')
        elif isinstance(n, And | Or):
            for c in n.children:
                walk(c)

    walk(node)
    return list(dict.fromkeys(out))


# --- matching -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
    tokens: frozenset[str]
    folded: str
    lang: str


def prepare(text: str, lang: str = "") -> Prepared:
    """The form of a mention every compiled query reads: computed once per mention."""
    folded = (text or "").casefold()
    tokens: set[str] = set()
    for tok in _TOKEN.findall(folded):
        tokens.add(tok)
        if tok[0] in "#@":
            tok = tok[1:]
            tokens.add(tok)
        tokens.update(_SUBWORD.findall(tok))
    return Prepared(frozenset(tokens), folded, (lang or "").lower().split("-")[0])


Matcher = Callable[[Prepared], bool]


def _compile(node: Node) -> Matcher:
    if isinstance(node, Term):
        value = node.value
        if value.endswith("*"):
            stem = value[:-1]
            return lambda p: any(t.startswith(stem) for t in p.tokens)
        return lambda p: value in p.tokens
    if isinstance(node, Phrase):
        pattern = re.compile(r"(?<!\w)" + r"\W+".join(re.escape(w) for w in node.words) + r"(?!\w)")
        first = node.words[0]
        # The set look-up rules out almost every text before the regex runs.
        return lambda p: first in p.tokens and pattern.search(p.folded) is not None
    if isinstance(node, Lang):
        code = node.code
        return lambda p: p.lang == code
    if isinstance(node, Not):
        child = _compile(node.child)
        return lambda p: not child(p)
    children = [_compile(c) for c in node.children]
    if isinstance(node, And):
        return lambda p: all(c(p) for c in children)
    return lambda p: any(c(p) for c in children)


@dataclass(frozen=True)
class CompiledQuery:
    text: str
    ast: Node
    matcher: Matcher

    def matches(self, text: str, lang: str = "") -> bool:
        return self.matcher(prepare(text, lang))


def compile_query(text: str) -> CompiledQuery:
    ast = parse(text)
    return CompiledQuery(text, ast, _compile(ast))


def check(text: str) -> str | None:
    """None when the query is valid, else the message with its column."""
    try:
        parse(text)
    except QuerySyntaxError as exc:
        return str(exc)
    return None
