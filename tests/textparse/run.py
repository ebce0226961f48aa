#!/usr/bin/env python3
"""Compare trawl's exposition parsers with Prometheus's own parser test tables.

usage: run.py TRAWL_BIN PROMETHEUS_CHECKOUT_DIR [-v]

  TRAWL_BIN                the trawl binary (copy it first if it may be rebuilt meanwhile)
  PROMETHEUS_CHECKOUT_DIR  a plain Prometheus source tree with model/textparse/*_test.go, e.g.
                             mkdir -p /tmp/prom && git -C <prometheus clone or mirror> \
                               archive HEAD model/textparse | tar -x -C /tmp/prom

Nothing of Prometheus's test content lives in this repository: the Go test files
(model/textparse/promparse_test.go and openmetricsparse_test.go) are read at run
time, their table literals are evaluated by the small Go-literal evaluator below,
each input is written to a file and handed to `TRAWL_BIN parse --json`, and
trawl's entries are compared with the expected ones.

Three shapes of test are recognised (any other test function of those files that
builds a parser makes the script stop, naming the function, so that a new upstream
test is noticed instead of silently skipped):

  entries   one input and a []parsedEntry of what the parser yields (or a table of
            {name, input, expected []parsedEntry}); one case per expected entry
  errors    a table of {input, err}; Prometheus fails when err is neither "" nor
            "EOF" (io.EOF is how the parser reports the end of valid data); one case
            per row, comparing only fail vs succeed
  no-crash  require.NotPanics around one input; one case, trawl must end normally

Standard library only (Python 3.11). Exit status 0 when every case agrees and
trawl reports no entry that Prometheus does not.
"""

import argparse
import difflib
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile

TEST_FILES = ["model/textparse/promparse_test.go", "model/textparse/openmetricsparse_test.go"]

CONTENT_TYPES = {
    "prom": "text/plain; version=0.0.4",
    "om": "application/openmetrics-text; version=1.0.0",
}

TIMEOUT = 20  # seconds per trawl run


class GoError(Exception):
    """A construct of the Go source this script does not understand."""


class TrawlOutputError(Exception):
    """trawl printed something this script cannot read."""


# --------------------------------------------------------------------------------------
# Go tokenizer
# --------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
     (?P<ws>[ \t\r\n]+)
    |(?P<comment>//[^\n]*|/\*.*?\*/)
    |(?P<raw>`[^`]*`)
    |(?P<str>"(?:\\.|[^"\\\n])*")
    |(?P<rune>'(?:\\.|[^'\\\n])+')
    |(?P<num>0[xX][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)
    |(?P<ident>[^\W\d]\w*)
    |(?P<op>\.\.\.|:=|\+=|-=|\*=|/=|==|!=|<=|>=|&&|\|\||<-|\+\+|--|<<|>>|&\^|[-+*/%&|^<>=!(){}\[\],;:.~])
    """,
    re.S | re.X,
)


class Tok:
    __slots__ = ("kind", "text", "line")

    def __init__(self, kind, text, line):
        self.kind, self.text, self.line = kind, text, line

    def __repr__(self):
        return f"{self.kind}:{self.text!r}@{self.line}"


def tokenize(src, filename):
    """Split Go source into tokens (comments and white space dropped)."""
    toks, pos, line = [], 0, 1
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        if not m:
            raise GoError(f"{filename}:{line}: cannot tokenize {src[pos:pos + 20]!r}")
        kind, text = m.lastgroup, m.group()
        if kind not in ("ws", "comment"):
            toks.append(Tok(kind, text, line))
        line += text.count("\n")
        pos = m.end()
    return toks


_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11,
                   "\\": 92, '"': 34, "'": 39}


def go_unquote(lit):
    """The bytes of a Go string literal; \\xNN and octal escapes are raw bytes."""
    if lit[0] == "`":
        return lit[1:-1].replace("\r", "").encode()
    body, out, i = lit[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        e = body[i + 1]
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e == "x":
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
        elif e in "01234567":
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        elif e == "u":
            out += chr(int(body[i + 2:i + 6], 16)).encode()
            i += 6
        elif e == "U":
            out += chr(int(body[i + 2:i + 10], 16)).encode()
            i += 10
        else:
            raise GoError(f"unknown escape \\{e} in {lit!r}")
    return bytes(out)


def go_number(text):
    t = text.replace("_", "")
    if t.lower().startswith("0x"):
        return int(t, 16)
    if any(c in t for c in ".eE"):
        return float(t)
    if len(t) > 1 and t[0] == "0":
        return int(t, 8)
    return int(t)


# --------------------------------------------------------------------------------------
# Go-literal evaluator
# --------------------------------------------------------------------------------------
# Values: Go strings are bytes; numbers int/float; labels.Labels a sorted tuple of
# (name, value) byte pairs; structs a dict with the keys that were written (plus
# "__type__"); slices a list; *int64 an int or None.

# Field types of the named structs the tables use (from interface_test.go and
# model/exemplar). Only what the tables need: an elided `{...}` element takes its
# type from here.
NAMED_STRUCTS = {
    "parsedEntry": {
        "m": "string", "shs": "*histogram.Histogram", "fhs": "*histogram.FloatHistogram",
        "v": "float64", "lset": "labels.Labels", "t": "*int64",
        "es": ("slice", "exemplar.Exemplar"), "st": "int64",
        "typ": "model.MetricType", "help": "string", "unit": "string", "comment": "string",
    },
    "exemplar.Exemplar": {
        "Labels": "labels.Labels", "Value": "float64", "Ts": "int64", "HasTs": "bool",
    },
    # model/histogram: integer histograms count in int64 deltas, float ones in absolute floats.
    "histogram.Histogram": {
        "CounterResetHint": "histogram.CounterResetHint", "Schema": "int32",
        "ZeroThreshold": "float64", "ZeroCount": "uint64", "Count": "uint64", "Sum": "float64",
        "PositiveSpans": ("slice", "histogram.Span"), "NegativeSpans": ("slice", "histogram.Span"),
        "PositiveBuckets": ("slice", "int64"), "NegativeBuckets": ("slice", "int64"),
        "CustomValues": ("slice", "float64"),
    },
    "histogram.FloatHistogram": {
        "CounterResetHint": "histogram.CounterResetHint", "Schema": "int32",
        "ZeroThreshold": "float64", "ZeroCount": "float64", "Count": "float64", "Sum": "float64",
        "PositiveSpans": ("slice", "histogram.Span"), "NegativeSpans": ("slice", "histogram.Span"),
        "PositiveBuckets": ("slice", "float64"), "NegativeBuckets": ("slice", "float64"),
        "CustomValues": ("slice", "float64"),
    },
    "histogram.Span": {"Offset": "int32", "Length": "uint32"},
    # interface.go. Each option is mapped to trawl's flags in nhcb_flags(); a field
    # missing here stops the script.
    "ParserOptions": {
        "EnableTypeAndUnitLabels": "bool", "IgnoreNativeHistograms": "bool",
        "ConvertClassicHistogramsToNHCB": "bool", "KeepClassicOnClassicAndNativeHistograms": "bool",
        "OpenMetricsSkipSTSeries": "bool", "FallbackContentType": "string",
    },
}

METRIC_TYPES = {
    "model.MetricTypeCounter": b"counter",
    "model.MetricTypeGauge": b"gauge",
    "model.MetricTypeHistogram": b"histogram",
    "model.MetricTypeGaugeHistogram": b"gaugehistogram",
    "model.MetricTypeSummary": b"summary",
    "model.MetricTypeInfo": b"info",
    "model.MetricTypeStateset": b"stateset",
    "model.MetricTypeUnknown": b"unknown",
}

CONSTANTS = dict(METRIC_TYPES)
CONSTANTS.update({
    "true": True,
    "false": False,
    # We compare the variant without type-and-unit labels (see typeAndUnitLabels).
    "typeAndUnitEnabled": False,
    "value.NormalNaN": 0x7FF8000000000001,
    "value.StaleNaN": 0x7FF0000000000002,
    # model/histogram
    "histogram.CustomBucketsSchema": -53,
    "histogram.UnknownCounterReset": 0,
    "histogram.CounterReset": 1,
    "histogram.NotCounterReset": 2,
    "histogram.GaugeType": 3,
})


def labels_from(pairs):
    return tuple(sorted(pairs))


def _fn_from_strings(*args):
    if len(args) % 2:
        raise GoError("labels.FromStrings with an odd number of arguments")
    return labels_from(zip(args[0::2], args[1::2]))


def _fn_type_and_unit_labels(enabled, with_labels, without_labels):
    # promparse_test.go: the first set when type-and-unit labels are on, else the second.
    return with_labels if enabled else without_labels


def _fn_todo_detect_family_switch(enabled, expected, inherited_type):
    # promparse_test.go: adds __type__ only when type-and-unit labels are on.
    if enabled and inherited_type != b"unknown":
        return labels_from([p for p in expected if p[0] != b"__type__"] + [(b"__type__", inherited_type)])
    return expected


FUNCTIONS = {
    "labels.FromStrings": _fn_from_strings,
    "labels.EmptyLabels": lambda: (),
    "typeAndUnitLabels": _fn_type_and_unit_labels,
    "todoDetectFamilySwitch": _fn_todo_detect_family_switch,
    "int64p": lambda x: int(x),
    "string": lambda x: x,
    "math.Float64frombits": lambda bits: struct.unpack("<d", struct.pack("<Q", bits))[0],
    "math.NaN": lambda: math.nan,
    "math.Inf": lambda sign: math.inf if sign >= 0 else -math.inf,
}


class Evaluator:
    """Recursive descent over a token list, evaluating one Go expression at a time."""

    def __init__(self, toks, where):
        self.toks, self.where = toks, where

    def fail(self, i, what):
        line = self.toks[i].line if i < len(self.toks) else "?"
        raise GoError(f"{self.where} (line {line}): {what}")

    def expect(self, i, text):
        if i >= len(self.toks) or self.toks[i].text != text:
            got = self.toks[i].text if i < len(self.toks) else "end of input"
            self.fail(i, f"expected {text!r}, got {got!r}")
        return i + 1

    def is_op(self, i, text):
        return i < len(self.toks) and self.toks[i].kind == "op" and self.toks[i].text == text

    # expr := unary { '+' unary }
    def expr(self, i, hint=None):
        val, i = self.unary(i, hint)
        while self.is_op(i, "+"):
            rhs, i = self.unary(i + 1, hint)
            if type(val) is not type(rhs) and not (isinstance(val, (int, float)) and isinstance(rhs, (int, float))):
                self.fail(i, "'+' of mismatched operands")
            val = val + rhs
        if i < len(self.toks) and self.toks[i].kind == "op" and self.toks[i].text in ("-", "*", "/", "%", "|", "&", "<<", ">>"):
            self.fail(i, f"operator {self.toks[i].text!r} not handled")
        return val, i

    def unary(self, i, hint):
        if self.is_op(i, "-"):
            val, i = self.unary(i + 1, hint)
            if not isinstance(val, (int, float)):
                self.fail(i, "unary minus on a non-number")
            return -val, i
        if self.is_op(i, "&"):  # &histogram.Histogram{...}: the pointer is the value
            if not (i + 1 < len(self.toks) and self.toks[i + 1].kind == "ident"):
                self.fail(i, "'&' of something other than a composite literal")
            val, j = self.primary(i + 1, hint)
            if not isinstance(val, dict):
                self.fail(i, "'&' of something other than a composite literal")
            return val, j
        return self.primary(i, hint)

    def qualified(self, i):
        name = self.toks[i].text
        i += 1
        while self.is_op(i, ".") and i + 1 < len(self.toks) and self.toks[i + 1].kind == "ident":
            name += "." + self.toks[i + 1].text
            i += 2
        return name, i

    def primary(self, i, hint):
        if i >= len(self.toks):
            self.fail(i, "unexpected end of input")
        tok = self.toks[i]
        if tok.kind in ("str", "raw"):
            return go_unquote(tok.text), i + 1
        if tok.kind == "num":
            return go_number(tok.text), i + 1
        if tok.kind == "rune":
            return ord(go_unquote('"' + tok.text[1:-1] + '"').decode()), i + 1
        if self.is_op(i, "("):
            val, i = self.expr(i + 1)
            return val, self.expect(i, ")")
        if self.is_op(i, "["):
            typ, i = self.parse_type(i)
            if self.is_op(i, "("):  # conversion, e.g. []byte("...")
                val, i = self.expr(i + 1)
                if typ != ("slice", "byte") or not isinstance(val, bytes):
                    self.fail(i, f"conversion to {typ} not handled")
                return val, self.expect(i, ")")
            return self.composite(i, typ)
        if self.is_op(i, "{"):
            if hint is None:
                self.fail(i, "composite literal without a known type")
            return self.composite(i, hint)
        if tok.kind == "ident":
            name, j = self.qualified(i)
            if self.is_op(j, "("):
                if name not in FUNCTIONS:
                    self.fail(i, f"function {name} not handled")
                args, j = self.call_args(j)
                try:
                    return FUNCTIONS[name](*args), j
                except (TypeError, struct.error) as e:
                    self.fail(i, f"{name}: {e}")
            if self.is_op(j, "{") and name in NAMED_STRUCTS:
                return self.composite(j, name)
            if name in CONSTANTS:
                return CONSTANTS[name], j
            self.fail(i, f"identifier {name} not handled")
        self.fail(i, f"token {tok.text!r} not handled")

    def call_args(self, i):
        i = self.expect(i, "(")
        args = []
        while not self.is_op(i, ")"):
            val, i = self.expr(i)
            args.append(val)
            if self.is_op(i, ","):
                i += 1
            elif not self.is_op(i, ")"):
                self.fail(i, "expected ',' or ')' in call")
        return args, i + 1

    # Types: "name", ("slice", elem), ("struct", {field: type}).
    def parse_type(self, i):
        if self.is_op(i, "["):
            i = self.expect(i + 1, "]")
            elem, i = self.parse_type(i)
            return ("slice", elem), i
        if self.is_op(i, "*"):
            elem, i = self.parse_type(i + 1)
            return "*" + elem if isinstance(elem, str) else ("ptr", elem), i
        tok = self.toks[i]
        if tok.kind == "ident" and tok.text == "struct":
            i = self.expect(i + 1, "{")
            fields = {}
            while not self.is_op(i, "}"):
                names = [self.toks[i].text]
                i += 1
                while self.is_op(i, ","):
                    names.append(self.toks[i + 1].text)
                    i += 2
                ftype, i = self.parse_type(i)
                for n in names:
                    fields[n] = ftype
                if self.is_op(i, ";"):
                    i += 1
            return ("struct", fields), i + 1
        if tok.kind == "ident":
            return self.qualified(i)
        self.fail(i, f"type starting with {tok.text!r} not handled")

    def struct_fields(self, typ, i):
        if isinstance(typ, tuple) and typ[0] == "struct":
            return typ[1], "struct"
        if typ in NAMED_STRUCTS:
            return NAMED_STRUCTS[typ], typ
        self.fail(i, f"composite literal of type {typ} not handled")

    def composite(self, i, typ):
        i = self.expect(i, "{")
        if isinstance(typ, tuple) and typ[0] == "slice":
            out = []
            while not self.is_op(i, "}"):
                val, i = self.expr(i, hint=typ[1])
                out.append(val)
                if self.is_op(i, ","):
                    i += 1
                elif not self.is_op(i, "}"):
                    self.fail(i, "expected ',' or '}' in slice literal")
            return out, i + 1
        fields, name = self.struct_fields(typ, i)
        out = {"__type__": name}
        while not self.is_op(i, "}"):
            tok = self.toks[i]
            if tok.kind != "ident" or not self.is_op(i + 1, ":"):
                self.fail(i, f"positional element in a {name} literal not handled")
            if tok.text not in fields:
                self.fail(i, f"unknown field {tok.text} of {name}")
            val, i = self.expr(i + 2, hint=fields[tok.text])
            out[tok.text] = val
            if self.is_op(i, ","):
                i += 1
            elif not self.is_op(i, "}"):
                self.fail(i, "expected ',' or '}' in struct literal")
        return out, i + 1


# --------------------------------------------------------------------------------------
# Reading the test functions
# --------------------------------------------------------------------------------------

def matching(toks, i, open_, close):
    """Index just past the bracket that closes the one at toks[i]."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].kind == "op":
            if toks[j].text == open_:
                depth += 1
            elif toks[j].text == close:
                depth -= 1
                if depth == 0:
                    return j + 1
    raise GoError(f"unbalanced {open_} at line {toks[i].line}")


def functions(toks):
    """{name: body tokens} of the top-level functions (methods skipped)."""
    out, i = {}, 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "ident" and t.text == "func" and i + 1 < len(toks) and toks[i + 1].kind == "ident":
            name = toks[i + 1].text
            j = matching(toks, i + 2, "(", ")")
            while not (toks[j].kind == "op" and toks[j].text == "{"):
                j += 1  # skip the result types, if any
            end = matching(toks, j, "{", "}")
            out[name] = (toks[j + 1:end - 1], toks[i].line)
            i = end
        else:
            i += 1
    return out


def find_seq(toks, texts, start=0):
    """Indexes where the token texts `texts` occur in a row."""
    n = len(texts)
    return [i for i in range(start, len(toks) - n + 1)
            if all(toks[i + k].text == texts[k] and toks[i + k].kind in ("op", "ident") for k in range(n))]


class TestFunc:
    def __init__(self, name, fmt, shape, options, ignored_fields, inputs):
        self.name, self.fmt, self.shape = name, fmt, shape
        self.options, self.ignored_fields = options, ignored_fields
        # inputs: list of (label, input bytes, expected entries | list of error rows)
        self.inputs = inputs


def parser_options(body, fmt):
    """A human-readable description of how the test builds its parser."""
    if fmt == "prom":
        for i in find_seq(body, ["NewPromParser", "("]):
            end = matching(body, i + 1, "(", ")")
            args = [t.text for t in body[i + 2:end - 1]]
            last = args[-1] if args else "?"
            if last == "typeAndUnitEnabled":
                return "NewPromParser, type-and-unit labels off (the =true variant is not compared)"
            return f"NewPromParser, enableTypeAndUnitLabels={last}"
        return "NewPromParser"
    opts = sorted({t.text for t in body if t.kind == "ident" and t.text.startswith("WithOMParser")})
    notes = []
    for o in opts:
        if o == "WithOMParserSTSeriesSkipped":
            notes.append("WithOMParserSTSeriesSkipped (hides the _created series of counters, summaries and "
                         "histograms, which only feed st)")
        elif o == "WithOMParserTypeAndUnitLabels":
            notes.append("WithOMParserTypeAndUnitLabels only in the type-and-unit=true variant, not compared")
        else:
            notes.append(o)
    return "NewOpenMetricsParser" + (", options: " + "; ".join(notes) if notes else ", no options")


def reset_fields(funcs):
    """Fields resetValAndLset zeroes (tests calling it do not compare those)."""
    if "resetValAndLset" not in funcs:
        return set()
    body, _ = funcs["resetValAndLset"]
    # e[i].v = 0 ; e[i].lset = labels.EmptyLabels()
    return {body[i + 1].text for i in range(len(body) - 2)
            if body[i].text == "." and body[i + 1].kind == "ident" and body[i + 2].text == "="}


def load_tests(prom_dir):
    tests = []
    for rel in TEST_FILES:
        path = os.path.join(prom_dir, rel)
        with open(path, "rb") as f:
            src = f.read().decode("utf-8")
        toks = tokenize(src, rel)
        funcs = functions(toks)
        reset = reset_fields(funcs)
        for name, (body, line) in funcs.items():
            if not name.startswith("Test"):
                continue
            texts = {t.text for t in body if t.kind == "ident"}
            if "NewPromParser" in texts:
                fmt = "prom"
            elif "NewOpenMetricsParser" in texts:
                fmt = "om"
            else:
                continue  # does not feed an input to these two parsers
            where = f"{rel}:{line} {name}"
            ev = Evaluator(body, where)
            options = parser_options(body, fmt)
            ignored = set(reset) if "resetValAndLset" in texts else set()
            tests.append(read_test(name, fmt, body, ev, options, ignored, where))
    return tests


def read_test(name, fmt, body, ev, options, ignored, where):
    tables = find_seq(body, ["[", "]", "struct", "{"])
    if tables:
        if len(tables) > 1:
            raise GoError(f"{where}: more than one []struct table")
        rows, _ = ev.expr(tables[0])
        fields = set(k for r in rows for k in r) - {"__type__"}
        if fields <= {"input", "err"} and "input" in fields:
            inputs = [(f"{name}[{k}]", r.get("input", b""), r.get("err", b"")) for k, r in enumerate(rows)]
            return TestFunc(name, fmt, "errors", options, ignored, inputs)
        if {"input", "expected"} <= fields <= {"name", "input", "expected"}:
            inputs = []
            for k, r in enumerate(rows):
                label = f"{name}/case={r['name'].decode()}" if "name" in r else f"{name}/{k}"
                inputs.append((label.replace(" ", "_"), r["input"], r["expected"]))
            return TestFunc(name, fmt, "entries", options, ignored, inputs)
        raise GoError(f"{where}: table with fields {sorted(fields)} not handled")
    exps = find_seq(body, ["[", "]", "parsedEntry", "{"])
    if exps:
        if len(exps) > 1:
            raise GoError(f"{where}: more than one []parsedEntry literal")
        starts = find_seq(body, ["input", ":="])
        if len(starts) != 1:
            raise GoError(f"{where}: expected one `input :=`, found {len(starts)}")
        inp, _ = ev.expr(starts[0] + 2)
        for i in find_seq(body, ["input", "+="]):
            more, _ = ev.expr(i + 2)
            inp += more
        expected, _ = ev.expr(exps[0])
        return TestFunc(name, fmt, "entries", options, ignored, [(name, inp, expected)])
    if "NotPanics" in {t.text for t in body}:
        calls = find_seq(body, ["NewPromParser" if fmt == "prom" else "NewOpenMetricsParser", "("])
        if len(calls) != 1:
            raise GoError(f"{where}: expected one parser call")
        inp, _ = ev.expr(calls[0] + 2)  # the []byte(...) argument
        return TestFunc(name, fmt, "no-crash", options, ignored, [(f"{name}[0]", inp, None)])
    raise GoError(f"{where}: this test feeds the parser but its shape is not handled; teach run.py about it")


# --------------------------------------------------------------------------------------
# Entries: what Prometheus expects and what trawl reports, in one common form
# --------------------------------------------------------------------------------------

class Entry:
    """kind: help/type/unit/series; name: m; the rest as in parsedEntry."""

    def __init__(self, kind, name, **kw):
        self.kind, self.name = kind, name
        self.text = kw.get("text")          # help text, type kind or unit
        self.labels = kw.get("labels")      # tuple of (bytes, bytes)
        self.value = kw.get("value")        # float
        self.ts = kw.get("ts")              # int or None
        self.exemplars = kw.get("exemplars", [])  # [(labels, value, ts or None)]
        self.st = kw.get("st", 0)           # start timestamp, 0 = none

    def key(self):
        return (self.kind, self.name)

    def show(self):
        if self.kind != "series":
            return f"{self.kind} {q(self.name)} {q(self.text)}"
        s = f"series {q(self.name)} labels={show_labels(self.labels)} value={fmt_float(self.value)}"
        if self.ts is not None:
            s += f" t={self.ts}"
        for lbls, v, ts in self.exemplars:
            s += f" exemplar={show_labels(lbls)} {fmt_float(v)}" + (f" {ts}" if ts is not None else "")
        if self.st:
            s += f" st={self.st}"
        return s


def expected_entries(parsed):
    """parsedEntry dicts -> Entry list (comments dropped: trawl reports no comment text)."""
    out = []
    for e in parsed:
        if "comment" in e:
            continue
        m = e.get("m", b"")
        if "typ" in e:
            out.append(Entry("type", m, text=e["typ"]))
        elif "help" in e:
            out.append(Entry("help", m, text=e["help"]))
        elif "unit" in e:
            out.append(Entry("unit", m, text=e["unit"]))
        else:
            exemplars = [(x.get("Labels", ()), float(x.get("Value", 0)),
                          int(x.get("Ts", 0)) if x.get("HasTs", False) else None)
                         for x in e.get("es", [])]
            out.append(Entry("series", m, labels=e.get("lset", ()), value=float(e.get("v", 0)),
                             ts=e.get("t"), exemplars=exemplars, st=int(e.get("st", 0))))
    return out


def utf8(s):
    return s.encode("utf-8", "surrogateescape")


def trawl_entries(lines):
    """trawl's JSON lines -> Entry list (comment and eof entries dropped)."""
    out = []
    for d in lines:
        kind = d.get("entry")
        if kind in (None, "comment", "eof"):
            continue
        if kind == "help":
            out.append(Entry("help", utf8(d["name"]), text=utf8(d["text"])))
        elif kind == "type":
            out.append(Entry("type", utf8(d["name"]), text=utf8(d["kind"])))
        elif kind == "unit":
            out.append(Entry("unit", utf8(d["name"]), text=utf8(d["unit"])))
        elif kind == "series":
            ex = d.get("exemplar")
            exemplars = []
            if ex is not None:
                exemplars.append((labels_from((utf8(n), utf8(v)) for n, v in ex["labels"]),
                                  float(ex["value"]), ex.get("timestamp")))
            out.append(Entry("series", utf8(d["series"]), labels=labels_from((utf8(n), utf8(v)) for n, v in d["labels"]),
                             value=float(d["value"]), ts=d.get("timestamp"), exemplars=exemplars,
                             # Not printed by trawl yet; read it once it is (ms, null = none).
                             st=d.get("st") or 0))
        else:
            raise TrawlOutputError(f"trawl printed an entry of unknown kind {kind!r}")
    return out


def same_float(x, y):
    return (math.isnan(x) and math.isnan(y)) or x == y


def compare_entry(exp, got, ignored):
    """The fields that differ, as short descriptions."""
    diffs = []
    if exp.kind != got.kind:
        return [f"Prometheus reports {exp.kind}, trawl {got.kind}"]
    if exp.name != got.name:
        diffs.append(f"{'series' if exp.kind == 'series' else 'name'}: {q(exp.name)} vs trawl {q(got.name)}")
    if exp.kind != "series":
        if exp.text != got.text:
            diffs.append(f"{exp.kind}: {q(exp.text)} vs trawl {q(got.text)}")
        return diffs
    if "lset" not in ignored and set(exp.labels) != set(got.labels):
        diffs.append(f"labels: {show_labels(exp.labels)} vs trawl {show_labels(got.labels)}")
    if "v" not in ignored and not same_float(exp.value, got.value):
        diffs.append(f"value: {fmt_float(exp.value)} vs trawl {fmt_float(got.value)}")
    if "t" not in ignored and exp.ts != got.ts:
        diffs.append(f"timestamp: {exp.ts} vs trawl {got.ts}")
    if "es" not in ignored:
        if len(exp.exemplars) != len(got.exemplars):
            diffs.append(f"exemplars: {len(exp.exemplars)} vs trawl {len(got.exemplars)}")
        else:
            for (el, ev, et), (gl, gv, gt) in zip(exp.exemplars, got.exemplars):
                if set(el) != set(gl):
                    diffs.append(f"exemplar labels: {show_labels(el)} vs trawl {show_labels(gl)}")
                if not same_float(ev, gv):
                    diffs.append(f"exemplar value: {fmt_float(ev)} vs trawl {fmt_float(gv)}")
                if et != gt:
                    diffs.append(f"exemplar timestamp: {et} vs trawl {gt}")
    if "st" not in ignored and exp.st != got.st:
        # 0 means "no start timestamp" on both sides; trawl prints none yet.
        diffs.append(f"st: {exp.st or 'none'} expected, trawl reports {got.st or 'none'}")
    return diffs


# --------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------

def q(bs):
    """Go-%q-like quoting of bytes, showing invalid UTF-8 as \\xNN."""
    if bs is None:
        return "nil"
    out = []
    for ch in bs.decode("utf-8", "surrogateescape"):
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            out.append("\\x%02x" % (o - 0xDC00))
        elif ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def show_labels(lbls):
    return "{" + ", ".join(f"{q(n)[1:-1]}={q(v)}" for n, v in sorted(lbls)) + "}"


def fmt_float(x):
    return repr(x) if not math.isnan(x) else "NaN"


# --------------------------------------------------------------------------------------
# Running trawl
# --------------------------------------------------------------------------------------

class Run:
    """The outcome of one `trawl parse --json` run."""

    def __init__(self, entries, ok, error, crashed):
        self.entries, self.ok, self.error, self.crashed = entries, ok, error, crashed


def run_trawl(trawl, tmpdir, fmt, data, created_timestamps=False):
    path = os.path.join(tmpdir, "input.txt")
    with open(path, "wb") as f:
        f.write(data)
    cmd = [trawl, "parse", "--json", "--content-type", CONTENT_TYPES[fmt], path]
    if created_timestamps:
        # As the parser under test with WithOMParserSTSeriesSkipped: _created lines of
        # counters, summaries and histograms are start timestamps, not series.
        cmd.insert(2, "--created-timestamps")
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return Run([], False, f"timed out after {TIMEOUT}s", True)
    lines = []
    for raw in p.stdout.decode("utf-8", "surrogateescape").splitlines():
        if raw.strip():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                return Run([], False, f"unparsable output line {raw[:80]!r}", True)
    result = lines[-1] if lines and "result" in lines[-1] else None
    if result is None or p.returncode not in (0, 1) or (p.returncode == 0) != (result["result"] == "ok"):
        err = p.stderr.decode("utf-8", "replace").strip().splitlines()
        return Run([], False, f"exit status {p.returncode}, no result line: {err[-1] if err else ''}", True)
    msg = None
    if result["result"] not in ("ok", "error"):
        raise TrawlOutputError(f"unknown result {result['result']!r}")
    if result["result"] != "ok":
        msg = f"{result.get('error')} (line {result.get('line')}, column {result.get('column')})"
    return Run(trawl_entries(lines[:-1]), result["result"] == "ok", msg, False)


# --------------------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------------------

class Tally:
    def __init__(self):
        self.cases = self.agree = self.extra = 0


def out_line(s):
    print(s, flush=True)


def compare_entries(label, exp, run, ignored, verbose, tally, skips_created):
    """Align the two entry lists on (kind, name), then compare pair by pair."""
    tally.cases += len(exp)
    if run.crashed:
        out_line(f"DISAGREE {label}[*]: trawl did not finish: {run.error}")
        return
    got = run.entries
    matcher = difflib.SequenceMatcher(a=[e.key() for e in exp], b=[e.key() for e in got], autojunk=False)
    first_shown = False

    def disagree(idx, what, e=None, g=None):
        nonlocal first_shown
        out_line(f"DISAGREE {label}[{idx}]: {what}")
        if verbose and not first_shown:
            first_shown = True
            out_line(f"    prometheus: {e.show() if e else '(nothing)'}")
            out_line(f"    trawl:      {g.show() if g else '(nothing)'}")

    def extra(after, g):
        tally.extra += 1
        note = ""
        if skips_created and g.kind == "series" and re.search(rb"_created\b", g.name):
            note = " (this test hides _created series with WithOMParserSTSeriesSkipped)"
        where = f"after {after}" if after >= 0 else "before 0"
        out_line(f"EXTRA    {label}[{where}]: trawl also reports {g.show()}{note}")

    any_missing = False
    last_agreed = False

    def missing(idx, e):
        nonlocal any_missing
        any_missing = True
        why = f"trawl stopped: {run.error}" if not run.ok else "trawl does not report it"
        disagree(idx, f"{e.kind} {q(e.name)} missing: {why}", e, None)

    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            pairs, lone_exp, lone_got = list(zip(range(a0, a1), range(b0, b1))), [], []
        elif op == "replace":
            n = min(a1 - a0, b1 - b0)
            pairs = list(zip(range(a0, a0 + n), range(b0, b0 + n)))
            lone_exp, lone_got = list(range(a0 + n, a1)), list(range(b0 + n, b1))
        elif op == "delete":
            pairs, lone_exp, lone_got = [], list(range(a0, a1)), []
        else:
            pairs, lone_exp, lone_got = [], [], list(range(b0, b1))
        for ai, bi in pairs:
            diffs = compare_entry(exp[ai], got[bi], ignored)
            last_agreed = not diffs
            if diffs:
                disagree(ai, f"{exp[ai].kind} {q(exp[ai].name)}: " + "; ".join(diffs), exp[ai], got[bi])
            else:
                tally.agree += 1
        for ai in lone_exp:
            missing(ai, exp[ai])
        for bi in lone_got:
            extra(a0 + len(pairs) - 1, got[bi])  # the expected entry it follows
    # testParse requires every Next() up to io.EOF to succeed: an error after the
    # last expected entry is a disagreement of that entry.
    if not run.ok and exp and not any_missing:
        tally.agree -= 1 if last_agreed else 0
        out_line(f"DISAGREE {label}[{len(exp) - 1}]: trawl fails after this entry: {run.error}")


def compare_verdict(label, data, err, run, verbose, tally):
    tally.cases += 1
    prom_fails = err not in (b"", b"EOF")
    if run.crashed:
        out_line(f"DISAGREE {label}: input {q(data)}: trawl did not finish: {run.error}")
    elif prom_fails == (not run.ok):
        tally.agree += 1
        if verbose:
            out_line(f"agree    {label}: input {q(data)}: both {'fail' if prom_fails else 'succeed'}")
    else:
        what = "Prometheus fails, trawl accepts" if prom_fails else "Prometheus accepts, trawl fails"
        out_line(f"DISAGREE {label}: input {q(data)}: {what}")
    if verbose:
        out_line(f"    prometheus: {err.decode('utf-8', 'replace') if prom_fails else 'ok (' + (err.decode() or 'io.EOF') + ')'}")
        out_line(f"    trawl:      {run.error if run.error else 'ok'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trawl")
    ap.add_argument("prometheus")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    trawl = os.path.abspath(args.trawl)

    try:
        tests = load_tests(args.prometheus)
    except (GoError, OSError) as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 2

    summary = []
    total = Tally()
    with tempfile.TemporaryDirectory(prefix="trawl-textparse-") as tmpdir:
        for t in tests:
            tally = Tally()
            fmt_name = "Prometheus text" if t.fmt == "prom" else "OpenMetrics"
            out_line(f"== {t.name} ({fmt_name}; {t.shape}): {t.options}"
                     + (f"; not compared (reset by the test): {', '.join(sorted(t.ignored_fields))}"
                        if t.ignored_fields else ""))
            skips_created = "WithOMParserSTSeriesSkipped" in t.options
            for label, data, expected in t.inputs:
                try:
                    run = run_trawl(trawl, tmpdir, t.fmt, data, created_timestamps=skips_created)
                except (TrawlOutputError, KeyError, TypeError, ValueError) as e:
                    print(f"run.py: {label}: cannot read trawl's output: {e!r}", file=sys.stderr)
                    return 2
                if t.shape == "entries":
                    try:
                        exp = expected_entries(expected)
                    except (KeyError, TypeError) as e:
                        print(f"run.py: {label}: cannot read an expected entry: {e}", file=sys.stderr)
                        return 2
                    compare_entries(label, exp, run, t.ignored_fields, args.verbose, tally, skips_created)
                elif t.shape == "errors":
                    compare_verdict(label, data, expected, run, args.verbose, tally)
                else:  # no-crash
                    tally.cases += 1
                    if run.crashed:
                        out_line(f"DISAGREE {label}: input {q(data)}: trawl did not end normally: {run.error}")
                    else:
                        tally.agree += 1
                        if args.verbose:
                            out_line(f"agree    {label}: input {q(data)}: trawl "
                                     + (f"fails: {run.error}" if not run.ok else "succeeds"))
            summary.append((t, tally))
            total.cases += tally.cases
            total.agree += tally.agree
            total.extra += tally.extra

    units = {"entries": "case = expected entry", "errors": "case = input", "no-crash": "case = input"}
    print()
    print("Summary. A case is one expected entry of an entry table (comments not counted), "
          "one input of an error table or no-crash test.")
    width = max(len(t.name) for t, _ in summary)
    for t, tally in summary:
        extra = f", {tally.extra} extra trawl entries" if tally.extra else ""
        print(f"  {t.name:<{width}} {tally.cases:4d} cases, {tally.agree:4d} agree"
              f"  ({units[t.shape]}{extra})")
    extra = f"; trawl reports {total.extra} entries Prometheus does not (EXTRA lines)" if total.extra else ""
    print(f"overall: {total.cases} cases, {total.agree} agree{extra}")
    return 0 if total.cases == total.agree and total.extra == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
