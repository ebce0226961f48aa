#!/usr/bin/env python3
"""Compare trawl's exposition parsers with Prometheus's own parser test tables.

usage: run.py TRAWL_BIN PROMETHEUS_CHECKOUT_DIR [-v]

  TRAWL_BIN                the trawl binary (copy it first if it may be rebuilt meanwhile)
  PROMETHEUS_CHECKOUT_DIR  a plain Prometheus source tree with model/textparse/*_test.go, e.g.
                             mkdir -p /tmp/prom && git -C <prometheus clone or mirror> \
                               archive HEAD model/textparse | tar -x -C /tmp/prom

Nothing of Prometheus's test content lives in this repository: the Go test files
(model/textparse/promparse_test.go, openmetricsparse_test.go, nhcbparse_test.go and
protobufparse_test.go) are read at run time, their table literals are evaluated by the small Go-literal
evaluator below, each input is written to a file and handed to `TRAWL_BIN parse
--json`, and trawl's entries are compared with the expected ones.

In promparse_test.go and openmetricsparse_test.go three shapes of test are recognised
(any other test function of those files that builds a parser makes the script stop,
naming the function, so that a new upstream test is noticed instead of silently
skipped):

  entries   one input and a []parsedEntry of what the parser yields (or a table of
            {name, input, expected []parsedEntry}); one case per expected entry
  errors    a table of {input, err}; Prometheus fails when err is neither "" nor
            "EOF" (io.EOF is how the parser reports the end of valid data); one case
            per row, comparing only fail vs succeed
  no-crash  require.NotPanics around one input; one case, trawl must end normally

The tests of nhcbparse_test.go and protobufparse_test.go build their parser with
New(..., ParserOptions{...}) or NewProtobufParser(...), and some generate their
expectations with loops and closures, so their bodies are run by a small Go
interpreter (see "nhcbparse_test.go" below): testParse plus requireEntries gives one
case per expected entry, native histograms included; a parser read with p.Next() is
one case decided by the require.* calls that follow. Protobuf bodies, which the tests
write in protobuf text format and encode with metricFamiliesToProtobuf, are encoded
the same way by the script (see "Protobuf" below). Parsers with type-and-unit labels
and fuzz tests are skipped and printed as SKIP with the reason. A statement, call or
option the interpreter does not know stops the script.

Standard library only (Python 3.11). Exit status 0 when every case agrees and
trawl reports no entry that Prometheus does not; 2 when the Go source cannot be
read or followed.
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
    "proto": "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
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
# Protobuf: the text format of the tests' MetricFamily messages, and the wire format
# --------------------------------------------------------------------------------------
# metricFamiliesToProtobuf (protobufparse_test.go) reads each string with gogo's
# proto.UnmarshalText into a dto.MetricFamily, marshals it with proto.Marshal and writes
# it after its length as a uvarint. The same is done here from the schema below, which
# is io.prometheus.client's prompb/io/prometheus/client/metrics.proto (proto3) at
# d15adb9a: message -> {field name: (number, type, repeated)}. A scalar type is a proto
# type name, "enum" (MetricType) or another message of this table. When the checkout
# holds metrics.proto, the table is checked against it (check_proto_schema).

PROTO_SCHEMA = {
    "MetricFamily": {"name": (1, "string", False), "help": (2, "string", False),
                     "type": (3, "enum", False), "metric": (4, "Metric", True),
                     "unit": (5, "string", False)},
    "Metric": {"label": (1, "LabelPair", True), "gauge": (2, "Gauge", False),
               "counter": (3, "Counter", False), "summary": (4, "Summary", False),
               "untyped": (5, "Untyped", False), "timestamp_ms": (6, "int64", False),
               "histogram": (7, "Histogram", False)},
    "LabelPair": {"name": (1, "string", False), "value": (2, "string", False)},
    "Gauge": {"value": (1, "double", False)},
    "Untyped": {"value": (1, "double", False)},
    "Counter": {"value": (1, "double", False), "exemplar": (2, "Exemplar", False),
                "start_timestamp": (3, "Timestamp", False)},
    "Quantile": {"quantile": (1, "double", False), "value": (2, "double", False)},
    "Summary": {"sample_count": (1, "uint64", False), "sample_sum": (2, "double", False),
                "quantile": (3, "Quantile", True), "start_timestamp": (4, "Timestamp", False)},
    "Histogram": {"sample_count": (1, "uint64", False), "sample_count_float": (4, "double", False),
                  "sample_sum": (2, "double", False), "bucket": (3, "Bucket", True),
                  "start_timestamp": (15, "Timestamp", False), "schema": (5, "sint32", False),
                  "zero_threshold": (6, "double", False), "zero_count": (7, "uint64", False),
                  "zero_count_float": (8, "double", False), "negative_span": (9, "BucketSpan", True),
                  "negative_delta": (10, "sint64", True), "negative_count": (11, "double", True),
                  "positive_span": (12, "BucketSpan", True), "positive_delta": (13, "sint64", True),
                  "positive_count": (14, "double", True), "exemplars": (16, "Exemplar", True)},
    "Bucket": {"cumulative_count": (1, "uint64", False), "cumulative_count_float": (4, "double", False),
               "upper_bound": (2, "double", False), "exemplar": (3, "Exemplar", False)},
    "BucketSpan": {"offset": (1, "sint32", False), "length": (2, "uint32", False)},
    "Exemplar": {"label": (1, "LabelPair", True), "value": (2, "double", False),
                 "timestamp": (3, "Timestamp", False)},
    # google.protobuf.Timestamp
    "Timestamp": {"seconds": (1, "int64", False), "nanos": (2, "int32", False)},
}

# Before the field was renamed start_timestamp (same numbers), metrics.proto called it
# created_timestamp; an older checkout's test strings use that name.
PROTO_ALIASES = {("Counter", "created_timestamp"): "start_timestamp",
                 ("Summary", "created_timestamp"): "start_timestamp",
                 ("Histogram", "created_timestamp"): "start_timestamp"}

PROTO_ENUM = {"COUNTER": 0, "GAUGE": 1, "SUMMARY": 2, "UNTYPED": 3, "HISTOGRAM": 4, "GAUGE_HISTOGRAM": 5}

PROTO_INT_RANGES = {"int64": (-1 << 63, (1 << 63) - 1), "uint64": (0, (1 << 64) - 1),
                    "int32": (-1 << 31, (1 << 31) - 1), "uint32": (0, (1 << 32) - 1),
                    "sint32": (-1 << 31, (1 << 31) - 1), "sint64": (-1 << 63, (1 << 63) - 1),
                    "enum": (-1 << 31, (1 << 31) - 1)}

PROTO_FILE = "prompb/io/prometheus/client/metrics.proto"

_PB_TOKEN_RE = re.compile(
    r"""
     (?P<ws>[ \t\r\n\f\v]+)
    |(?P<comment>\#[^\n]*)
    |(?P<str>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')
    |(?P<num>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?)
    |(?P<ident>-?[A-Za-z_][A-Za-z0-9_.]*)
    |(?P<op>[:<>{}\[\],;])
    """,
    re.X,
)


class ProtoTextError(Exception):
    """A text-format MetricFamily that gogo's proto.UnmarshalText would refuse (or that
    this script does not read); the message names the line within the string."""


def _pb_tokens(text):
    toks, pos, line = [], 0, 1
    while pos < len(text):
        m = _PB_TOKEN_RE.match(text, pos)
        if not m:
            raise ProtoTextError(f"line {line}: cannot read {text[pos:pos + 20]!r}")
        if m.lastgroup not in ("ws", "comment"):
            toks.append((m.lastgroup, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    return toks


def _pb_unquote(lit):
    """A text-format string literal (C-style escapes) as bytes."""
    body, out, i = lit[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        e = body[i + 1]
        if e in _SIMPLE_ESCAPES or e == "?":
            out.append(_SIMPLE_ESCAPES.get(e, 63))
            i += 2
        elif e in "xX":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])
            if not m:
                raise ProtoTextError(f"bad escape in {lit!r}")
            out.append(int(m.group(), 16))
            i += 2 + len(m.group())
        elif e in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            out.append(int(m.group(), 8) & 0xFF)
            i += 1 + len(m.group())
        else:
            raise ProtoTextError(f"escape \\{e} in {lit!r} not handled")
    return bytes(out)


def parse_proto_text(text, msg="MetricFamily"):
    """The message written in protobuf text format: {field: value}, repeated fields as
    lists, messages as dicts (with "__msg__"), strings as bytes."""
    toks = _pb_tokens(text)
    val, i = _pb_message(toks, 0, msg, None)
    if i != len(toks):
        raise ProtoTextError(f"line {toks[i][2]}: unexpected {toks[i][1]!r}")
    return val


def _pb_message(toks, i, msg, close):
    schema, out = PROTO_SCHEMA[msg], {"__msg__": msg}
    while True:
        if i >= len(toks):
            if close is None:
                return out, i
            raise ProtoTextError(f"{msg}: missing {close!r}")
        kind, text, line = toks[i]
        if close is not None and kind == "op" and text == close:
            return out, i + 1
        if kind != "ident":
            raise ProtoTextError(f"line {line}: expected a field name of {msg}, got {text!r}")
        name = PROTO_ALIASES.get((msg, text), text)
        if name not in schema:
            raise ProtoTextError(f"line {line}: unknown field {text!r} of {msg}")
        _, ftype, repeated = schema[name]
        i += 1
        colon = i < len(toks) and toks[i][1] == ":"
        if colon:
            i += 1
        if i >= len(toks):
            raise ProtoTextError(f"line {line}: {text}: missing value")
        if toks[i][1] == "[":
            raise ProtoTextError(f"line {line}: {text}: list syntax [..] not handled")
        if ftype in PROTO_SCHEMA:
            if toks[i][1] not in ("<", "{"):
                raise ProtoTextError(f"line {line}: {text}: expected '<' or '{{'")
            val, i = _pb_message(toks, i + 1, ftype, ">" if toks[i][1] == "<" else "}")
        else:
            if not colon:
                raise ProtoTextError(f"line {line}: {text}: expected ':'")
            val, i = _pb_scalar(toks, i, ftype, text)
            # a string value may be several literals in a row, concatenated
            while ftype == "string" and i < len(toks) and toks[i][0] == "str":
                val += _pb_unquote(toks[i][1])
                i += 1
        if repeated:
            out.setdefault(name, []).append(val)
        elif name in out:
            raise ProtoTextError(f"line {line}: non-repeated field {text!r} of {msg} was repeated")
        else:
            out[name] = val
        if i < len(toks) and toks[i][1] in (",", ";"):
            i += 1


def _pb_scalar(toks, i, ftype, field):
    kind, text, line = toks[i]
    where = f"line {line}: {field}"
    if ftype == "string":
        if kind != "str":
            raise ProtoTextError(f"{where}: expected a string, got {text!r}")
        return _pb_unquote(text), i + 1
    if ftype == "enum":
        if kind == "ident" and text in PROTO_ENUM:
            return PROTO_ENUM[text], i + 1
        if kind != "num":
            raise ProtoTextError(f"{where}: unknown MetricType {text!r}")
    if ftype == "double":
        low = text.lower().lstrip("+")
        if kind == "ident" and low in ("inf", "-inf", "infinity", "-infinity", "nan"):
            return float(low.replace("infinity", "inf")), i + 1
        if kind != "num":
            raise ProtoTextError(f"{where}: expected a number, got {text!r}")
        t = text.rstrip("fF") if not text.lower().startswith(("0x", "-0x", "+0x")) else text
        try:
            return (float(int(t, 16)) if "x" in t.lower() else float(t)), i + 1
        except ValueError:
            raise ProtoTextError(f"{where}: bad number {text!r}") from None
    # integer types: strconv.ParseInt/ParseUint with base 0
    if kind != "num":
        raise ProtoTextError(f"{where}: expected an integer, got {text!r}")
    try:
        v = int(text, 0) if not re.fullmatch(r"[-+]?0[0-7]+", text) else int(text.replace("0", "0o", 1), 8)
    except ValueError:
        raise ProtoTextError(f"{where}: {text!r} is not an integer (Go's text parser refuses it)") from None
    lo, hi = PROTO_INT_RANGES[ftype]
    if not lo <= v <= hi:
        raise ProtoTextError(f"{where}: {text} out of range for {ftype}")
    return v, i + 1


def _varint(n):
    n &= (1 << 64) - 1  # negative int32/int64: ten bytes, two's complement
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _zigzag(n):
    return (n << 1) ^ (n >> 63)


def _pb_key(num, wire):
    return _varint(num << 3 | wire)


def _pb_scalar_bytes(ftype, v):
    if ftype == "double":
        return struct.pack("<d", v)
    if ftype in ("sint32", "sint64"):
        return _varint(_zigzag(v))
    return _varint(v)


def encode_proto(msg):
    """proto.Marshal of a proto3 message as gogo's generated code does: fields in field
    number order; scalars, strings and enums left out when zero/empty (proto3); message
    fields written when set, even empty; repeated scalars packed."""
    out = bytearray()
    schema = PROTO_SCHEMA[msg["__msg__"]]
    for name, (num, ftype, repeated) in sorted(schema.items(), key=lambda kv: kv[1][0]):
        if name not in msg:
            continue
        v = msg[name]
        if ftype in PROTO_SCHEMA:
            for sub in (v if repeated else [v]):
                b = encode_proto(sub)
                out += _pb_key(num, 2) + _varint(len(b)) + b
        elif repeated:
            b = b"".join(_pb_scalar_bytes(ftype, x) for x in v)
            if v:
                out += _pb_key(num, 2) + _varint(len(b)) + b
        elif ftype == "string":
            if v:
                out += _pb_key(num, 2) + _varint(len(v)) + v
        elif v != 0:  # NaN != 0 is written; -0.0 == 0 is not, as in Go
            out += _pb_key(num, 1 if ftype == "double" else 0) + _pb_scalar_bytes(ftype, v)
    return bytes(out)


def metric_families_to_protobuf(texts):
    """metricFamiliesToProtobuf: each text-format MetricFamily, marshalled, after its
    length as a uvarint."""
    out = bytearray()
    for k, text in enumerate(texts):
        try:
            b = encode_proto(parse_proto_text(text.decode("utf-8")))
        except ProtoTextError as e:
            first = text.decode("utf-8", "replace").strip().splitlines()[0][:60] if text.strip() else ""
            raise ProtoTextError(f"MetricFamily #{k + 1} ({first}): {e}") from None
        out += _varint(len(b)) + b
    return bytes(out)


def check_proto_schema(prom_dir):
    """Compare PROTO_SCHEMA with the checkout's metrics.proto, if it holds one. Returns a
    note for the output; raises GoError on a difference."""
    path = os.path.join(prom_dir, PROTO_FILE)
    if not os.path.exists(path):
        return f"{PROTO_FILE} not in the checkout: the built-in schema (d15adb9a) is used unchecked"
    with open(path, encoding="utf-8") as f:
        src = re.sub(r"//[^\n]*", "", f.read())
    found = {}
    for m in re.finditer(r"message\s+(\w+)\s*\{(.*?)\}", src, re.S):
        fields = {}
        for fm in re.finditer(r"(repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*(\d+)", m.group(2)):
            typ = fm.group(2).split(".")[-1]
            typ = {"MetricType": "enum"}.get(typ, typ)
            name = PROTO_ALIASES.get((m.group(1), fm.group(3)), fm.group(3))
            fields[name] = (int(fm.group(4)), typ, bool(fm.group(1)))
        found[m.group(1)] = fields
    for msg, fields in PROTO_SCHEMA.items():
        if msg == "Timestamp":
            continue
        got = found.get(msg)
        if got is None:
            raise GoError(f"{PROTO_FILE}: no message {msg}; update PROTO_SCHEMA")
        if got != fields:
            diff = [f"{n}: {got.get(n)} there, {fields.get(n)} here" for n in sorted(set(got) | set(fields))
                    if got.get(n) != fields.get(n)]
            raise GoError(f"{PROTO_FILE}: message {msg} differs from run.py's PROTO_SCHEMA "
                          f"(number, type, repeated): {'; '.join(diff)}")
    enum = re.search(r"enum\s+MetricType\s*\{(.*?)\}", src, re.S)
    if not enum or dict((k, int(v)) for k, v in re.findall(r"(\w+)\s*=\s*(\d+)", enum.group(1))) != PROTO_ENUM:
        raise GoError(f"{PROTO_FILE}: enum MetricType differs from run.py's PROTO_ENUM")
    return f"schema checked against {PROTO_FILE}"


# --------------------------------------------------------------------------------------
# nhcbparse_test.go and protobufparse_test.go: test bodies run by a small Go interpreter
# --------------------------------------------------------------------------------------
# These tests build their parser with New(input, contentType, symbols, ParserOptions{...})
# or NewProtobufParser(b, ignoreNative, parseClassic, convertNHCB, typeAndUnit, st),
# and some generate their expectations with loops and closures
# (TestNHCBParser_NoNHCBWhenExponential) or read the parser step by step
# (TestNHCBNotCorruptMetricNameAfterRead). So their bodies are run, statement by
# statement, by the interpreter below: only the statements and calls these tests use,
# anything else stops the script (exit status 2) naming the test. The calls that touch a
# parser are modelled on trawl:
#
#   New(...)                 a parser: its body, media type and options (nhcb_flags);
#                            trawl runs on the first read
#   testParse + requireEntries  trawl's entries compared with the expected ones, one case
#                            per expected entry (as for the entry tables above)
#   p.Next(), p.Help(), ...  trawl's entries one at a time; the require.* calls after the
#                            first p.Next() decide the case (one per parser)
#   t.Run(name, f)           a subtest, labelled TestName/name (spaces become _)
#   NewProtobufParser(...)   as New with the matching options; a parser built outside the
#                            subtest that reads it belongs to that subtest
#   metricFamiliesToProtobuf the body, encoded by metric_families_to_protobuf
#   require.NotPanics(t, f)  f runs; it fails if trawl did not end normally
#   require.ErrorContains    as require.Error: trawl's wording is not compared

NHCB_TEST_FILE = "model/textparse/nhcbparse_test.go"

PROTO_TEST_FILE = "model/textparse/protobufparse_test.go"

# The files whose Test functions are run by the interpreter.
INTERP_TEST_FILES = [NHCB_TEST_FILE, PROTO_TEST_FILE]

PROTO_MEDIA_TYPE = "application/vnd.google.protobuf"

# New's media types (the part before ';') trawl is run on, and the format it is told.
MEDIA_TYPES = {"application/openmetrics-text": "om", "text/plain": "prom", PROTO_MEDIA_TYPE: "proto"}

# Media types whose runs are not compared, and why; each such run is printed as SKIP.
# (None today: protobuf bodies are encoded by metric_families_to_protobuf.)
SKIPPED_MEDIA_TYPES = {}

# Why a parser built with type-and-unit labels is not compared.
TYPE_AND_UNIT_SKIP = ("enableTypeAndUnitLabels: trawl parse has no such option (the "
                      "type-and-unit-label variants are not compared, as for the text tables)")

ENTRY_KINDS = {"help": "EntryHelp", "type": "EntryType", "unit": "EntryUnit",
               "comment": "EntryComment", "series": "EntrySeries", "histogram": "EntryHistogram"}

INTERP_CONSTANTS = {k: k for k in ("EntryInvalid", "EntryType", "EntryHelp", "EntrySeries",
                                   "EntryComment", "EntryUnit", "EntryHistogram")}

INT_TYPES = {"int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32",
             "uint64", "byte", "rune", "histogram.CounterResetHint"}


def nhcb_flags(opts, media_type):
    """trawl's flags for New's ParserOptions; (flags, None) or (None, why not)."""
    if opts.get("EnableTypeAndUnitLabels"):
        return None, "ParserOptions.EnableTypeAndUnitLabels: trawl parse has no such option"
    if opts.get("FallbackContentType"):
        return None, "ParserOptions.FallbackContentType: not handled"
    flags = []
    if opts.get("ConvertClassicHistogramsToNHCB"):
        flags.append("--convert-classic-histograms-to-nhcb")
    if opts.get("KeepClassicOnClassicAndNativeHistograms"):
        flags.append("--always-scrape-classic-histograms")
    if opts.get("OpenMetricsSkipSTSeries"):
        flags.append("--created-timestamps")
    if media_type == PROTO_MEDIA_TYPE:
        if not opts.get("IgnoreNativeHistograms"):
            flags.append("--native-histograms")  # only protobuf bodies carry native histograms
        # ProtobufParser.StartTimestamp always answers (from start_timestamp); trawl parse
        # prints `st` only with --created-timestamps, which changes nothing else for
        # protobuf bodies (it is about OpenMetrics _created lines).
        if "--created-timestamps" not in flags:
            flags.append("--created-timestamps")
    return flags, None


def insert_semicolons(toks):
    """Go's automatic semicolons: at a line end after an identifier, a literal, ')', ']',
    '}', '++' or '--' (the tokenizer drops newlines; statements need them back)."""
    out = []
    for k, t in enumerate(toks):
        out.append(t)
        end_line = t.line + t.text.count("\n")
        if k + 1 < len(toks) and toks[k + 1].line <= end_line:
            continue
        if t.kind in ("ident", "num", "str", "raw", "rune") or (
                t.kind == "op" and t.text in (")", "]", "}", "++", "--")):
            out.append(Tok("op", ";", end_line))
    return out


def function_decls(toks):
    """{name: (index of the parameters' '(', index of the body's '{', line)}."""
    out, i = {}, 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "ident" and t.text == "func" and i + 1 < len(toks) and toks[i + 1].kind == "ident":
            k = matching(toks, i + 2, "(", ")")
            while not (toks[k].kind == "op" and toks[k].text == "{"):
                k += 1
            out[toks[i + 1].text] = (i + 2, k, t.line)
            i = matching(toks, k, "{", "}")
        else:
            i += 1
    return out


class Multi(tuple):
    """The results of a call that returns more than one value."""


class GoMap(dict):
    def __init__(self, vtype):
        super().__init__()
        self.vtype = vtype


class Opaque:
    """A value the interpreter only passes along (a symbol table)."""

    def __init__(self, what):
        self.what = what

    def __repr__(self):
        return f"<{self.what}>"


class ProtoBody:
    """What metricFamiliesToProtobuf returns (a *bytes.Buffer): the encoded body."""

    def __init__(self, data):
        self.data = data

    def __repr__(self):
        return f"<protobuf body, {len(self.data)} bytes>"


class GoErr:
    """An error value returned by a parser (io.EOF or trawl's error)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


GO_EOF = GoErr("EOF")


class Closure:
    def __init__(self, name, params, body, scopes):
        self.name, self.params, self.body, self.scopes = name, params, body, scopes


class BreakSignal(Exception):
    """A `break` statement: ends the innermost for loop."""


class ReturnSignal(Exception):
    def __init__(self, values):
        super().__init__()
        self.values = values


class SubtestStop(Exception):
    """A require.* call failed (t.FailNow), or a skipped parser was read: the (sub)test ends."""


class Frame:
    """A test or subtest: its label and the parsers built in it."""

    def __init__(self, label):
        self.label, self.specs = label, []


class TestingT:
    def __init__(self, frame):
        self.frame = frame


class Got:
    """What testParse returns: the parser, read to the end."""

    def __init__(self, spec):
        self.spec = spec


class ParserSpec:
    """A parser built by New: trawl runs on its body when it is first read."""

    def __init__(self, ctx, label, media_type, opts, data, flags, skip, call=None):
        self.ctx, self.label, self.media_type, self.data = ctx, label, media_type, data
        self.call = call         # how the test builds it, when not New(...)
        self.frame = None        # the (sub)test it belongs to
        self.opts = sorted(k for k, v in opts.items() if not k.startswith("__") and v)
        self.flags, self.skip = flags, skip
        self.fmt = MEDIA_TYPES.get(media_type)
        self.read_all = self.recorded = self.stepped = False
        self.failure = None      # the first failing require.* after a step read
        self.trace = []          # the step reads, for -v
        self.pos, self.cur = 0, None
        self._run = None

    def run(self):
        if self._run is None:
            self._run = run_trawl(self.ctx.trawl, self.ctx.tmpdir, self.fmt, self.data, self.flags)
        return self._run

    def describe(self):
        if self.call:
            return self.call
        return f'New("{self.media_type}", ParserOptions{{{", ".join(self.opts)}}})'

    def command(self):
        if self.skip:
            return "not run"
        return f"trawl parse {' '.join(self.flags + ['--json'])} --content-type '{CONTENT_TYPES[self.fmt]}'"


class NhcbRecord:
    """One parser's outcome: kind "entries" (exp: Entry list, run), "steps" (spec.failure)
    or "skip" (reason, n_expected: expected entries not compared, if known)."""

    def __init__(self, kind, spec, **kw):
        self.kind, self.spec = kind, spec
        self.exp, self.run = kw.get("exp"), kw.get("run")
        self.reason, self.n_expected = kw.get("reason"), kw.get("n_expected")


class NhcbContext:
    def __init__(self, trawl, tmpdir):
        self.trawl, self.tmpdir = trawl, tmpdir
        self.records, self.frames = [], []


def copy_value(v):
    """Go value semantics for structs: assigning or appending one copies it."""
    if isinstance(v, dict) and not isinstance(v, GoMap):
        return dict(v)
    return v


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def go_equal(a, b):
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return a == b


def show_go(v):
    if isinstance(v, bytes):
        return q(v)
    if v is None:
        return "nil"
    if isinstance(v, float):
        return fmt_float(v)
    if isinstance(v, Hist):
        return "histogram " + v.show()
    return repr(v) if not isinstance(v, str) else v


class Interp(Evaluator):
    """Runs Go statements over the token list of nhcbparse_test.go (semicolons inserted).
    Scopes are dicts; a local type T is stored under the key ("type", T)."""

    BINARY = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
              "+": 4, "-": 4, "*": 5, "/": 5, "%": 5}

    def __init__(self, toks, decls, ctx, where):
        super().__init__(toks, where)
        self.decls, self.ctx = decls, ctx
        self.scopes = [{}]
        self.comma_ok_end = None

    # ---- names and types

    def lookup(self, name):
        for sc in reversed(self.scopes):
            if name in sc:
                return True, sc[name]
        return False, None

    def resolve(self, typ):
        for _ in range(20):
            if not isinstance(typ, str):
                return typ
            found, t = self.lookup(("type", typ))
            if not found:
                return typ
            typ = t
        return typ

    def is_type(self, name):
        return name in NAMED_STRUCTS or self.lookup(("type", name))[0]

    def zero(self, typ, i):
        r = self.resolve(typ)
        if isinstance(r, tuple):
            if r[0] in ("slice", "map", "ptr", "func"):
                return None
            if r[0] == "struct":
                return {"__type__": "struct", "__fields__": r[1]}
        elif r == "string" or r == "model.MetricType":
            return b""
        elif r == "bool":
            return False
        elif r in INT_TYPES:
            return 0
        elif r in ("float64", "float32"):
            return 0.0
        elif r == "labels.Labels":
            return ()
        elif r.startswith("*") or r in ("error", "any", "Parser"):
            return None
        elif r in NAMED_STRUCTS:
            return {"__type__": r, "__fields__": NAMED_STRUCTS[r]}
        self.fail(i, f"zero value of {typ} not handled")

    def struct_fields(self, typ, i):
        r = self.resolve(typ)
        if isinstance(r, tuple) and r[0] == "struct":
            return r[1], typ if isinstance(typ, str) else "struct"
        if isinstance(r, str) and r in NAMED_STRUCTS:
            return NAMED_STRUCTS[r], r
        self.fail(i, f"composite literal of type {typ} not handled")

    def parse_type(self, i):
        tok = self.toks[i]
        if tok.kind == "ident" and tok.text == "map":
            i = self.expect(i + 1, "[")
            k, i = self.parse_type(i)
            i = self.expect(i, "]")
            v, i = self.parse_type(i)
            return ("map", k, v), i
        if tok.kind == "ident" and tok.text == "func":
            _, i = self.signature(i + 1)
            return ("func",), i
        if tok.kind == "ident" and tok.text == "interface":
            self.fail(i, "interface types not handled")
        return super().parse_type(i)

    def signature(self, i):
        """Parameter names of the list at toks[i] == '(' and the index after the results."""
        end = matching(self.toks, i, "(", ")")
        groups, cur, depth = [], [], 0
        for t in self.toks[i + 1:end - 1]:
            if t.kind == "op" and t.text in ("(", "[", "{"):
                depth += 1
            elif t.kind == "op" and t.text in (")", "]", "}"):
                depth -= 1
            if depth == 0 and t.kind == "op" and t.text == ",":
                groups.append(cur)
                cur = []
            else:
                if t.kind == "op" and t.text == "...":
                    self.fail(i, "variadic parameters not handled")
                cur.append(t)
        if cur:
            groups.append(cur)
        named = any(len(g) > 1 and g[0].kind == "ident" and g[1].text != "." for g in groups)
        names = [g[0].text for g in groups] if named else ["_"] * len(groups)
        j = end
        if self.is_op(j, "("):
            j = matching(self.toks, j, "(", ")")
        elif j < len(self.toks) and (self.toks[j].kind == "ident" or self.is_op(j, "[") or self.is_op(j, "*")):
            _, j = self.parse_type(j)
        return names, j

    # ---- expressions

    def expr(self, i, hint=None):
        return self.binary(i, 1, hint)

    def binary(self, i, min_prec, hint):
        val, i = self.unary(i, hint)
        while (i < len(self.toks) and self.toks[i].kind == "op" and self.toks[i].text in self.BINARY
               and self.BINARY[self.toks[i].text] >= min_prec):
            op = self.toks[i].text
            rhs, j = self.binary(i + 1, self.BINARY[op] + 1, None)
            val, i = self.binop(op, val, rhs, i), j
        return val, i

    def binop(self, op, a, b, i):
        if op == "+" and isinstance(a, bytes) and isinstance(b, bytes):
            return a + b
        if op in ("==", "!="):
            return go_equal(a, b) == (op == "==")
        if op in ("&&", "||") and isinstance(a, bool) and isinstance(b, bool):
            return (a and b) if op == "&&" else (a or b)
        if is_num(a) and is_num(b):
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op in ("/", "%") and isinstance(a, int) and isinstance(b, int):
                if b == 0:
                    self.fail(i, "integer division by zero")
                quot = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)  # Go truncates
                return quot if op == "/" else a - b * quot
            if op == "/":
                return a / b
            if op in ("<", "<=", ">", ">="):
                return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        if op in ("<", "<=", ">", ">=") and isinstance(a, bytes) and isinstance(b, bytes):
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        self.fail(i, f"operator {op!r} on {type(a).__name__} and {type(b).__name__} not handled")

    def unary(self, i, hint):
        if self.is_op(i, "-"):
            val, j = self.unary(i + 1, hint)
            if not is_num(val):
                self.fail(i, "unary minus on a non-number")
            return -val, j
        if self.is_op(i, "!"):
            val, j = self.unary(i + 1, hint)
            if not isinstance(val, bool):
                self.fail(i, "'!' on a non-bool")
            return not val, j
        if self.is_op(i, "&"):
            val, j = self.unary(i + 1, hint)
            if not isinstance(val, dict):
                self.fail(i, "'&' of something other than a composite literal")
            return val, j
        if self.is_op(i, "*") or self.is_op(i, "<-"):
            self.fail(i, f"operator {self.toks[i].text!r} not handled")
        return self.primary(i, hint)

    def primary(self, i, hint):
        if i >= len(self.toks):
            self.fail(i, "unexpected end of input")
        tok = self.toks[i]
        if tok.kind == "ident":
            found, val = self.lookup(tok.text)
            if tok.text == "func":
                val, i = self.func_literal(i)
            elif tok.text in ("map", "struct"):
                typ, j = self.parse_type(i)
                val, i = self.composite(j, typ)
            elif tok.text == "nil":
                val, i = None, i + 1
            elif found:
                i += 1
            else:
                name, j = self.qualified(i)
                if self.is_op(j, "{") and self.is_type(name):
                    val, i = self.composite(j, name)
                elif self.is_op(j, "("):
                    val, i = self.call_named(name, i, j)
                elif name in INTERP_CONSTANTS:
                    val, i = INTERP_CONSTANTS[name], j
                elif name == "io.EOF":
                    val, i = GO_EOF, j
                elif name in CONSTANTS:
                    val, i = CONSTANTS[name], j
                else:
                    self.fail(i, f"identifier {name} not handled")
        elif self.is_op(i, "("):
            val, i = self.expr(i + 1)
            i = self.expect(i, ")")
        else:
            val, i = super().primary(i, hint)
        return self.postfix(val, i)

    def func_literal(self, i):
        if not self.is_op(i + 1, "("):
            self.fail(i, "func literal without parameters")
        names, j = self.signature(i + 1)
        if not self.is_op(j, "{"):
            self.fail(j, "expected a function body")
        return Closure("func literal", names, j, list(self.scopes)), matching(self.toks, j, "{", "}")

    def composite(self, i, typ):
        r = self.resolve(typ)
        if isinstance(r, tuple) and r[0] == "map":
            i = self.expect(i, "{")
            out = GoMap(r[2])
            while not self.is_op(i, "}"):
                k, i = self.expr(i, hint=r[1])
                i = self.expect(i, ":")
                v, i = self.expr(i, hint=r[2])
                out[k] = v
                if self.is_op(i, ","):
                    i += 1
                elif not self.is_op(i, "}"):
                    self.fail(i, "expected ',' or '}' in map literal")
            return out, i + 1
        if isinstance(r, tuple) and r[0] == "slice":
            return super().composite(i, r)
        val, j = super().composite(i, typ)
        val["__fields__"] = self.struct_fields(typ, i)[0]
        return val, j

    def call_args_spread(self, i):
        i = self.expect(i, "(")
        args, spread = [], False
        while not self.is_op(i, ")"):
            if spread:
                self.fail(i, "'...' before the last argument")
            val, i = self.expr(i)
            args.append(val)
            if self.is_op(i, "..."):
                spread = True
                i += 1
            if self.is_op(i, ","):
                i += 1
            elif not self.is_op(i, ")"):
                self.fail(i, "expected ',' or ')' in call")
        return args, spread, i + 1

    def postfix(self, val, i):
        while True:
            if self.is_op(i, "."):
                if i + 1 >= len(self.toks) or self.toks[i + 1].kind != "ident":
                    self.fail(i, "type assertions not handled")
                name = self.toks[i + 1].text
                if self.is_op(i + 2, "("):
                    args, spread, j = self.call_args_spread(i + 2)
                    if spread:
                        self.fail(i, "'...' in a method call not handled")
                    val, i = self.method(val, name, args, i), j
                else:
                    val, i = self.field(val, name, i), i + 2
            elif self.is_op(i, "["):
                idx, j = self.expr(i + 1)
                j = self.expect(j, "]")
                if isinstance(val, GoMap):
                    found = idx in val
                    v = val[idx] if found else self.zero(val.vtype, i)
                    if self.comma_ok_end == j:  # v, ok := m[k]
                        self.comma_ok_end = None
                        v = Multi((v, found))
                    val = v
                elif isinstance(val, list) and isinstance(idx, int) and not isinstance(idx, bool):
                    if not 0 <= idx < len(val):
                        self.fail(i, f"index {idx} out of range (Go panics)")
                    val = val[idx]
                else:
                    self.fail(i, f"indexing a {type(val).__name__} not handled")
                i = j
            elif self.is_op(i, "(") and isinstance(val, Closure):
                args, spread, j = self.call_args_spread(i)
                if spread:
                    self.fail(i, "'...' in a call not handled")
                val, i = self.call_closure(val, args, i), j
            else:
                return val, i

    def field(self, val, name, i):
        if isinstance(val, dict) and not isinstance(val, GoMap) and not name.startswith("__"):
            if name in val:
                return val[name]
            fields = val.get("__fields__") or NAMED_STRUCTS.get(val.get("__type__"))
            if fields and name in fields:
                return self.zero(fields[name], i)
        self.fail(i, f"field {name} of {show_go(val)} not handled")

    # ---- calls

    def call_closure(self, fn, args, i):
        if len(args) != len(fn.params):
            self.fail(i, f"{fn.name}: {len(args)} arguments for {len(fn.params)} parameters")
        saved = self.scopes
        self.scopes = fn.scopes + [{n: copy_value(a) for n, a in zip(fn.params, args) if n != "_"}]
        values = []
        try:
            self.stmts(fn.body + 1, matching(self.toks, fn.body, "{", "}") - 1)
        except ReturnSignal as r:
            values = r.values
        except BreakSignal:
            self.fail(i, "break outside a for loop")
        finally:
            self.scopes = saved
        if not values:
            return None
        return values[0] if len(values) == 1 else Multi(values)

    def call_named(self, name, i, j):
        args, spread, k = self.call_args_spread(j)
        if name == "append":
            if not args or not (args[0] is None or isinstance(args[0], list)):
                self.fail(i, "append to a non-slice")
            more = args[1:]
            if spread:
                if len(more) != 1 or not (more[0] is None or isinstance(more[0], list)):
                    self.fail(i, "append(s, x...) with x not a slice")
                more = more[0] or []
            return list(args[0] or []) + [copy_value(x) for x in more], k
        if spread:
            self.fail(i, f"'...' in a call of {name} not handled")
        if any(isinstance(a, Multi) for a in args):
            self.fail(i, f"{name}: a multi-value argument not handled")
        builtin = {
            "New": self.fn_new,
            "testParse": self.fn_test_parse,
            "requireEntries": self.fn_require_entries,
            "labels.NewSymbolTable": lambda a, _: Opaque("symbol table"),
            "metricFamiliesToProtobuf": self.fn_metric_families_to_protobuf,
            "NewProtobufParser": self.fn_new_protobuf,
            "errors.Is": self.fn_errors_is,
            "fmt.Sprintf": self.fn_sprintf,
            "strconv.Itoa": lambda a, _: str(int(a[0])).encode(),
            "strconv.FormatBool": lambda a, _: b"true" if a[0] else b"false",
            "len": lambda a, _: len(a[0] or []),
            "int": lambda a, _: int(a[0]), "int64": lambda a, _: int(a[0]),
            "uint64": lambda a, _: int(a[0]), "float64": lambda a, _: float(a[0]),
        }
        if name in builtin:
            try:
                return builtin[name](args, i), k
            except (TypeError, ValueError, IndexError) as e:
                self.fail(i, f"{name}: {e}")
        if name == "require.NotPanics":
            return self.not_panics(args, i), k
        if name.startswith("require."):
            return self.assertion(name, args, i), k
        if name in FUNCTIONS:
            try:
                return FUNCTIONS[name](*args), k
            except (TypeError, struct.error) as e:
                self.fail(i, f"{name}: {e}")
        if name in self.decls:
            paren, body, _ = self.decls[name]
            params, _ = self.signature(paren)
            return self.call_closure(Closure(name, params, body, [{}]), args, i), k
        self.fail(i, f"function {name} not handled")

    def method(self, val, name, args, i):
        if isinstance(val, dict) and isinstance(val.get(name), Closure):  # tc.parser(...)
            return self.call_closure(val[name], args, i)
        if isinstance(val, ProtoBody) and name == "Bytes" and not args:
            return val.data
        if isinstance(val, TestingT):
            if name == "Helper":
                return None
            if name == "Run":
                return self.subtest(val, args, i)
        if isinstance(val, ParserSpec):
            return self.parser_method(val, name, args, i)
        self.fail(i, f"method {name} of {show_go(val)} not handled")

    # ---- the parser under test

    def fn_new(self, args, i):
        if len(args) != 4:
            self.fail(i, "New with other than 4 arguments")
        data, ct, _, opts = args
        if not (isinstance(opts, dict) and opts.get("__type__") == "ParserOptions"):
            self.fail(i, "New without a ParserOptions literal")
        if not isinstance(ct, bytes):
            self.fail(i, "New with a content type that is not a string")
        media = ct.decode().split(";")[0].strip().lower()
        skip = SKIPPED_MEDIA_TYPES.get(media)
        if media in MEDIA_TYPES:
            if not isinstance(data, bytes):
                self.fail(i, f"New({show_go(data)}, {ct.decode()!r}): body not handled")
        elif skip is None:
            self.fail(i, f"New with content type {ct.decode()!r} not handled")
        flags, why = nhcb_flags(opts, media)
        if why:
            self.fail(i, why)
        return Multi((self.add_spec(ParserSpec(self.ctx, None, media, opts, data, flags, skip)), None))

    def add_spec(self, spec, frame=None):
        frame = frame or self.ctx.frames[-1]
        spec.label = frame.label if not frame.specs else f"{frame.label}#{len(frame.specs) + 1}"
        spec.frame = frame
        frame.specs.append(spec)
        return spec

    def adopt(self, spec):
        """A parser built outside the (sub)test that reads it (TestProtobufParse builds
        its parsers in the scenarios table, then reads each in its t.Run) belongs to
        the (sub)test that reads it, and takes its label."""
        frame = self.ctx.frames[-1]
        if spec.frame is frame:
            return
        if spec.stepped or spec.read_all:
            self.fail(0, "a parser read in two (sub)tests not handled")
        spec.frame.specs.remove(spec)
        self.add_spec(spec, frame)

    # NewProtobufParser(b, ignoreNativeHistograms, parseClassicHistograms,
    #                   convertClassicHistogramsToNHCB, enableTypeAndUnitLabels, st)
    PROTO_PARSER_ARGS = ("IgnoreNativeHistograms", "KeepClassicOnClassicAndNativeHistograms",
                         "ConvertClassicHistogramsToNHCB", "EnableTypeAndUnitLabels")

    def fn_new_protobuf(self, args, i):
        if len(args) != 6 or not isinstance(args[0], bytes) or not all(isinstance(a, bool) for a in args[1:5]):
            self.fail(i, "NewProtobufParser(b, bool, bool, bool, bool, st) not handled")
        opts = dict(zip(self.PROTO_PARSER_ARGS, args[1:5]))
        skip = TYPE_AND_UNIT_SKIP if opts["EnableTypeAndUnitLabels"] else None
        flags, why = nhcb_flags({k: v for k, v in opts.items() if k != "EnableTypeAndUnitLabels"}, PROTO_MEDIA_TYPE)
        if why:
            self.fail(i, why)
        names = ("ignoreNativeHistograms", "parseClassicHistograms", "convertClassicHistogramsToNHCB",
                 "enableTypeAndUnitLabels")
        call = "NewProtobufParser(" + ", ".join(f"{n}={str(v).lower()}" for n, v in zip(names, args[1:5])) + ")"
        return self.add_spec(ParserSpec(self.ctx, None, PROTO_MEDIA_TYPE, opts, args[0], flags, skip, call))

    def fn_metric_families_to_protobuf(self, args, i):
        if len(args) != 2 or not isinstance(args[1], list) or not all(isinstance(x, bytes) for x in args[1]):
            self.fail(i, "metricFamiliesToProtobuf(t, []string) not handled")
        try:
            return ProtoBody(metric_families_to_protobuf(args[1]))
        except (ProtoTextError, UnicodeDecodeError) as e:
            # Go's test would fail here (require.NoError on proto.UnmarshalText).
            self.fail(i, f"metricFamiliesToProtobuf: a MetricFamily in text format not read: {e}")

    def fn_errors_is(self, args, i):
        if len(args) != 2 or args[1] is not GO_EOF or not (args[0] is None or isinstance(args[0], GoErr)):
            self.fail(i, "errors.Is(err, io.EOF) is the only form handled")
        return args[0] is GO_EOF

    def fn_sprintf(self, args, i):
        if not args or not isinstance(args[0], bytes):
            self.fail(i, "fmt.Sprintf without a format string")
        rest = list(args[1:])

        def verb(m):
            if m.group() == "%%":
                return "%"
            if not rest:
                self.fail(i, "fmt.Sprintf: too few arguments")
            v = rest.pop(0)
            if m.group() in ("%v", "%t") and isinstance(v, bool):
                return "true" if v else "false"
            if m.group() in ("%v", "%d") and isinstance(v, int) and not isinstance(v, bool):
                return str(v)
            if m.group() in ("%v", "%s") and isinstance(v, bytes):
                return v.decode("utf-8", "surrogateescape")
            self.fail(i, f"fmt.Sprintf: {m.group()} of {show_go(v)} not handled")
        out = re.sub(r"%[^a-zA-Z%]*[a-zA-Z%]", verb, args[0].decode("utf-8", "surrogateescape"))
        if rest:
            self.fail(i, "fmt.Sprintf: too many arguments")
        return out.encode("utf-8", "surrogateescape")

    def not_panics(self, args, i):
        """require.NotPanics(t, f): f runs; a Go panic is trawl not ending normally
        (killed, timed out, exit status other than 0 and 1, no result line)."""
        if len(args) != 2 or not isinstance(args[0], TestingT) or not isinstance(args[1], Closure):
            self.fail(i, "require.NotPanics(t, func) not handled")
        self.call_closure(args[1], [], i)
        stepped = [s for s in args[0].frame.specs if s.stepped]
        if not stepped:
            self.fail(i, "require.NotPanics around a function that reads no parser")
        for spec in stepped:
            if not spec.skip and spec.run().crashed:
                msg = f"require.NotPanics (line {self.toks[i].line}): trawl did not end normally: {spec.run().error}"
                spec.failure = msg
                spec.trace.append("FAIL " + msg)
                raise SubtestStop()
        return None

    def fn_test_parse(self, args, i):
        if len(args) != 2 or not isinstance(args[1], ParserSpec):
            self.fail(i, "testParse(t, p) with p not a parser from New")
        self.adopt(args[1])
        args[1].read_all = True
        return Got(args[1])

    def fn_require_entries(self, args, i):
        if len(args) != 3 or not isinstance(args[2], Got) or not (args[1] is None or isinstance(args[1], list)):
            self.fail(i, "requireEntries(t, exp, got) with got not from testParse")
        spec = args[2].spec
        if spec.recorded:
            self.fail(i, "requireEntries twice on one parser")
        spec.recorded = True
        try:
            exp = expected_entries(args[1] or [])
        except (KeyError, TypeError) as e:
            self.fail(i, f"cannot read an expected entry: {e}")
        if spec.skip:
            self.ctx.records.append(NhcbRecord("skip", spec, reason=spec.skip, n_expected=len(exp)))
        else:
            self.ctx.records.append(NhcbRecord("entries", spec, exp=exp, run=spec.run()))
        return None

    def parser_method(self, spec, name, args, i):
        if args:
            self.fail(i, f"p.{name} with arguments not handled")
        if name not in ("Next", "Help", "Type", "Unit", "Series", "Histogram"):
            self.fail(i, f"parser method {name} not handled")
        self.adopt(spec)
        spec.stepped = True
        if spec.skip:
            raise SubtestStop()
        if name == "Next":
            run = spec.run()
            if run.crashed:
                spec.cur = None
                spec.trace.append(f"Next() = EntryInvalid, trawl did not finish: {run.error}")
                return Multi(("EntryInvalid", GoErr(f"trawl did not finish: {run.error}")))
            if spec.pos < len(run.stream):
                d = spec.cur = run.stream[spec.pos]
                spec.pos += 1
                kind = ENTRY_KINDS.get(d.get("entry"))
                if kind is None:
                    raise TrawlOutputError(f"trawl printed an entry of unknown kind {d.get('entry')!r}")
                spec.trace.append(f"Next() = {kind}: {json.dumps(d, sort_keys=True)}")
                return Multi((kind, None))
            spec.cur = None
            err = GO_EOF if run.ok else GoErr(run.error)
            spec.trace.append(f"Next() = EntryInvalid, {err}")
            return Multi(("EntryInvalid", err))
        d = spec.cur or {}
        kind = d.get("entry")
        if name == "Help":
            out = (utf8(d["name"]), utf8(d["text"])) if kind == "help" else (b"", b"")
        elif name == "Type":
            out = (utf8(d["name"]), utf8(d["kind"])) if kind == "type" else (b"", b"")
        elif name == "Unit":
            out = (utf8(d["name"]), utf8(d["unit"])) if kind == "unit" else (b"", b"")
        elif name == "Series":
            out = (self.series_text(spec, d), d.get("timestamp"), float(d["value"])) if kind == "series" else (b"", None, 0.0)
        else:  # Histogram: m, t, *Histogram, *FloatHistogram
            if kind == "histogram":
                h = Hist.from_trawl(d["histogram"])
                out = (self.series_text(spec, d), d.get("timestamp"), None if h.is_float else h, h if h.is_float else None)
            else:
                out = (b"", None, None, None)
        spec.trace.append(f"{name}() = " + ", ".join(show_go(x) for x in out))
        return Multi(out)

    @staticmethod
    def series_text(spec, d):
        """m of a trawl series or histogram line (for protobuf, rebuilt from its labels)."""
        if spec.fmt == "proto":
            return proto_entry_bytes(labels_from((utf8(n), utf8(v)) for n, v in d["labels"]))
        return utf8(d["series"])

    def assertion(self, name, args, i):
        if not args or not isinstance(args[0], TestingT):
            self.fail(i, f"{name} without t as first argument")
        a = args[1:]
        checks = {
            "require.NoError": (1, lambda: a[0] is None, lambda: f"unexpected error {show_go(a[0])}"),
            "require.Error": (1, lambda: a[0] is not None, lambda: "no error"),
            # The wording of trawl's errors is not compared, only that there is one.
            "require.ErrorContains": (2, lambda: a[0] is not None,
                                      lambda: f"no error (one containing {show_go(a[1])} expected)"),
            "require.NotNil": (1, lambda: a[0] is not None, lambda: "nil"),
            "require.Nil": (1, lambda: a[0] is None, lambda: f"{show_go(a[0])}, not nil"),
            "require.True": (1, lambda: a[0] is True, lambda: "false"),
            "require.False": (1, lambda: a[0] is False, lambda: "true"),
            "require.Equal": (2, lambda: go_equal(a[0], a[1]),
                              lambda: f"expected {show_go(a[0])}, got {show_go(a[1])}"),
        }
        if name not in checks:
            self.fail(i, f"function {name} not handled")
        n, ok, what = checks[name]
        if len(a) < n:
            self.fail(i, f"{name} with too few arguments")
        stepped = [s for s in args[0].frame.specs if s.stepped]
        if ok():
            if name == "require.ErrorContains" and stepped:
                has = isinstance(a[1], bytes) and a[1].decode("utf-8", "replace") in str(a[0])
                stepped[-1].trace.append(f"{name} (line {self.toks[i].line}): holds: trawl fails (Go wants "
                                         f"{show_go(a[1])} in the message; trawl's {'has' if has else 'lacks'} "
                                         "it; the wording is not compared)")
            return None
        msg = f"{name} (line {self.toks[i].line}): {what()}"
        if not stepped:
            self.fail(i, f"the test's own assertion fails, before any parser is read: {msg}")
        stepped[-1].failure = msg
        stepped[-1].trace.append("FAIL " + msg)
        raise SubtestStop()

    def subtest(self, t, args, i):
        if len(args) != 2 or not isinstance(args[0], bytes) or not isinstance(args[1], Closure):
            self.fail(i, "t.Run(name, func) not handled")
        frame = Frame(f"{t.frame.label}/{args[0].decode('utf-8', 'replace').replace(' ', '_')}")
        self.ctx.frames.append(frame)
        try:
            self.call_closure(args[1], [TestingT(frame)], i)
        except SubtestStop:
            pass
        finally:
            self.ctx.frames.pop()
        self.finish_frame(frame, i)
        return True

    def finish_frame(self, frame, i):
        for spec in frame.specs:
            if spec.recorded:
                continue
            if spec.skip:
                self.ctx.records.append(NhcbRecord("skip", spec, reason=spec.skip))
            elif spec.stepped:
                self.ctx.records.append(NhcbRecord("steps", spec))
            elif spec.read_all:
                self.fail(i, "testParse without requireEntries not handled")
            else:
                self.fail(i, "a parser is built but never read")

    # ---- statements

    def stmts(self, i, stop):
        while i < stop:
            i = self.stmt(i, stop)

    def block(self, j):
        end = matching(self.toks, j, "{", "}")
        self.scopes.append({})
        try:
            self.stmts(j + 1, end - 1)
        finally:
            self.scopes.pop()
        return end

    def stmt_end(self, i, stop):
        depth = 0
        for k in range(i, stop):
            t = self.toks[k]
            if t.kind == "op":
                if t.text in ("(", "[", "{"):
                    depth += 1
                elif t.text in (")", "]", "}"):
                    depth -= 1
                elif t.text == ";" and depth == 0:
                    return k
        return stop

    def after(self, end):
        return end + 1 if self.is_op(end, ";") else end

    def exprs_to(self, i, end):
        vals = []
        while True:
            v, i = self.expr(i)
            vals.append(v)
            if i < end and self.is_op(i, ","):
                i += 1
                continue
            break
        if i != end:
            self.fail(i, f"unexpected {self.toks[i].text!r}")
        return vals

    def rhs(self, i, end, n):
        self.comma_ok_end = end if n == 2 else None
        try:
            vals = self.exprs_to(i, end)
        finally:
            self.comma_ok_end = None
        if len(vals) == 1 and n > 1:
            if not (isinstance(vals[0], Multi) and len(vals[0]) == n):
                self.fail(i, f"{n} variables for {show_go(vals[0])}")
            vals = list(vals[0])
        if len(vals) != n or any(isinstance(v, Multi) for v in vals):
            self.fail(i, f"{n} variables for {len(vals)} values")
        return [copy_value(v) for v in vals]

    def stmt(self, i, stop):
        t = self.toks[i]
        if self.is_op(i, ";"):
            return i + 1
        if self.is_op(i, "{"):
            return self.after(self.block(i))
        if t.kind == "ident":
            if t.text == "type":
                typ, j = self.parse_type(i + 2)
                self.scopes[-1][("type", self.toks[i + 1].text)] = typ
                return self.after(j)
            if t.text == "var":
                return self.var_stmt(i, stop)
            if t.text == "if":
                return self.after(self.if_stmt(i))
            if t.text == "for":
                return self.after(self.for_stmt(i))
            if t.text == "return":
                end = self.stmt_end(i + 1, stop)
                raise ReturnSignal(self.exprs_to(i + 1, end) if end > i + 1 else [])
            if t.text == "break" and self.is_op(i + 1, ";"):
                raise BreakSignal()
            if t.text in ("switch", "select", "go", "defer", "goto", "break", "continue",
                          "fallthrough", "const"):
                self.fail(i, f"statement {t.text} not handled")
        end = self.stmt_end(i, stop)
        return self.after(self.simple(i, end))

    def var_stmt(self, i, stop):
        if self.is_op(i + 1, "("):  # var ( a = x; b T ): one spec a line
            end = matching(self.toks, i + 1, "(", ")")
            k = i + 2
            while k < end - 1:
                if self.is_op(k, ";"):
                    k += 1
                    continue
                k = self.var_spec(k, self.stmt_end(k, end - 1))
            return self.after(end)
        return self.var_spec(i + 1, stop)

    def var_spec(self, start, stop):
        """One `a, b [T] [= x, y]` starting at toks[start]; the index after it."""
        i = start - 1
        names, j = [self.toks[i + 1].text], i + 2
        while self.is_op(j, ","):
            names.append(self.toks[j + 1].text)
            j += 2
        typ = None
        if not self.is_op(j, "="):
            typ, j = self.parse_type(j)
        if self.is_op(j, "="):
            end = self.stmt_end(j + 1, stop)
            vals = self.rhs(j + 1, end, len(names))
        else:
            end, vals = j, [self.zero(typ, i) for _ in names]
        for n, v in zip(names, vals):
            if n != "_":
                self.scopes[-1][n] = v
        return self.after(end)

    def simple(self, i, end):
        depth, k = 0, None
        for m in range(i, end):
            t = self.toks[m]
            if t.kind == "op":
                if t.text in ("(", "[", "{"):
                    depth += 1
                elif t.text in (")", "]", "}"):
                    depth -= 1
                elif depth == 0 and t.text in (":=", "=", "+=", "-=", "++", "--"):
                    k = m
                    break
        if k is None:
            _, j = self.expr(i)
            if j != end:
                self.fail(j, f"unexpected {self.toks[j].text!r}")
            return end
        op = self.toks[k].text
        targets, cur = [], []
        for m in range(i, k):
            if self.is_op(m, ",") and cur:
                targets.append(cur)
                cur = []
            else:
                cur.append(m)
        targets.append(cur)
        if op == ":=":
            if any(len(tg) != 1 or self.toks[tg[0]].kind != "ident" for tg in targets):
                self.fail(i, "':=' to something other than names")
            vals = self.rhs(k + 1, end, len(targets))
            for tg, v in zip(targets, vals):
                n = self.toks[tg[0]].text
                if n != "_":
                    self.scopes[-1][n] = v
            return end
        if op in ("++", "--"):
            if k + 1 != end or len(targets) != 1:
                self.fail(i, f"{op} statement not handled")
            old = self.get_target(targets[0])
            self.set_target(targets[0], self.binop("+" if op == "++" else "-", old, 1, k))
            return end
        vals = self.rhs(k + 1, end, len(targets))
        for tg, v in zip(targets, vals):
            if op != "=":
                if len(targets) != 1:
                    self.fail(i, f"{op} with several targets")
                v = self.binop(op[0], self.get_target(tg), v, k)
            self.set_target(tg, v)
        return end

    def get_target(self, tg):
        v, j = self.expr(tg[0])
        if j != tg[-1] + 1:
            self.fail(tg[0], "assignment target not handled")
        return v

    def set_target(self, tg, value):
        first = self.toks[tg[0]]
        if len(tg) == 1 and first.kind == "ident":
            if first.text == "_":
                return
            for sc in reversed(self.scopes):
                if first.text in sc:
                    sc[first.text] = value
                    return
            self.fail(tg[0], f"assignment to undeclared {first.text}")
        # a.b.c = value: a is a variable, b and c fields
        names = [self.toks[m] for m in tg[0::2]]
        if (len(tg) >= 3 and len(tg) % 2 and all(t.kind == "ident" for t in names)
                and all(self.is_op(m, ".") for m in tg[1::2])):
            found, obj = self.lookup(names[0].text)
            if not found:
                self.fail(tg[0], f"assignment to a field of undeclared {names[0].text}")
            for t in names[1:-1]:
                obj = self.field(obj, t.text, tg[0])
            if not isinstance(obj, dict) or isinstance(obj, GoMap):
                self.fail(tg[0], "assignment to a field of something other than a struct")
            obj[names[-1].text] = value
            return
        self.fail(tg[0], "assignment target not handled")

    def if_stmt(self, i):
        cond, b = self.expr(i + 1)
        if not self.is_op(b, "{"):
            self.fail(b, "if header not handled (only `if cond {`)")
        if not isinstance(cond, bool):
            self.fail(i, "if condition is not a bool")
        end = matching(self.toks, b, "{", "}")
        if cond:
            self.block(b)
        k = end
        while k < len(self.toks) and self.toks[k].kind == "ident" and self.toks[k].text == "else":
            if self.toks[k + 1].text == "if":
                if not cond:
                    return self.if_stmt(k + 1)
                b2 = k + 2
                depth = 0
                while not (depth == 0 and self.is_op(b2, "{")):  # skip the untaken condition
                    if self.toks[b2].kind == "op" and self.toks[b2].text in ("(", "["):
                        depth += 1
                    elif self.toks[b2].kind == "op" and self.toks[b2].text in (")", "]"):
                        depth -= 1
                    b2 += 1
                k = matching(self.toks, b2, "{", "}")
                continue
            if not self.is_op(k + 1, "{"):
                self.fail(k, "else without a block")
            if not cond:
                return self.block(k + 1)
            return matching(self.toks, k + 1, "{", "}")
        return k

    FOR_LIMIT = 100000  # iterations of a `for {` loop before the script gives up

    def for_stmt(self, i):
        if self.is_op(i + 1, "{"):  # for { ... }, left by break (or return)
            for _ in range(self.FOR_LIMIT):
                try:
                    self.block(i + 1)
                except BreakSignal:
                    return matching(self.toks, i + 1, "{", "}")
            self.fail(i, f"`for {{` loop still running after {self.FOR_LIMIT} iterations")
        names, k = [], i + 1
        while self.toks[k].kind == "ident" and self.toks[k].text != "range":
            names.append(self.toks[k].text)
            k += 1
            if self.is_op(k, ","):
                k += 1
            else:
                break
        if names:
            if not self.is_op(k, ":="):
                self.fail(k, "for loop form not handled (only `for k, v := range x {`)")
            k += 1
        if not (self.toks[k].kind == "ident" and self.toks[k].text == "range") or len(names) > 2:
            self.fail(k, "for loop form not handled (only `for k, v := range x {`)")
        coll, b = self.expr(k + 1)
        if not self.is_op(b, "{"):
            self.fail(b, "for header not handled")
        if not (coll is None or isinstance(coll, list)):
            self.fail(k, f"range over {type(coll).__name__} not handled")
        end = matching(self.toks, b, "{", "}")
        for idx, v in enumerate(coll or []):
            scope = {}
            if names and names[0] != "_":
                scope[names[0]] = idx
            if len(names) > 1 and names[1] != "_":
                scope[names[1]] = copy_value(v)
            self.scopes.append(scope)
            try:
                self.block(b)
            except BreakSignal:
                break
            finally:
                self.scopes.pop()
        return end


class NhcbTest:
    """One interpreted test function: its parsers' records, or skip (why the whole
    function is not run)."""

    def __init__(self, name, where, records, file, skip=None):
        self.name, self.where, self.records, self.file, self.skip = name, where, records, file, skip


PARSER_BUILDERS = {"New", "NewNHCBParser", "NewPromParser", "NewOpenMetricsParser", "NewProtobufParser"}

# Fuzz functions run their seed corpus in `go test` too; they are not followed.
FUZZ_SKIP = ("fuzz test: its inputs are generated with Go's math/rand from seeds, which "
             "run.py does not reproduce")


class InterpFile:
    def __init__(self, rel, toks, decls, names, fuzz):
        self.rel, self.toks, self.decls, self.names, self.fuzz = rel, toks, decls, names, fuzz


def load_interp_files(prom_dir):
    """Tokens and function declarations of each of INTERP_TEST_FILES, with its Test (and
    Fuzz) functions that build a parser."""
    out = []
    for rel in INTERP_TEST_FILES:
        with open(os.path.join(prom_dir, rel), "rb") as f:
            src = f.read().decode("utf-8")
        toks = insert_semicolons(tokenize(src, rel))
        decls = function_decls(toks)
        names, fuzz = [], []
        for name, (_, body, _) in decls.items():
            if not name.startswith(("Test", "Fuzz")):
                continue
            end = matching(toks, body, "{", "}")
            if any(t.kind == "ident" and t.text in PARSER_BUILDERS for t in toks[body:end]):
                (names if name.startswith("Test") else fuzz).append(name)
        out.append(InterpFile(rel, toks, decls, names, fuzz))
    return out


def run_interp_files(files, trawl, tmpdir):
    tests = []
    for f in files:
        tests += run_nhcb(f, trawl, tmpdir)
    return tests


def run_nhcb(f, trawl, tmpdir):
    """Run each test body of one file; trawl runs as its parsers are read."""
    tests = []
    toks, decls = f.toks, f.decls
    file = os.path.basename(f.rel)
    for name in f.names + f.fuzz:
        paren, body, line = decls[name]
        where = f"{f.rel}:{line} {name}"
        if name in f.fuzz:
            tests.append(NhcbTest(name, where, [], file, skip=FUZZ_SKIP))
            continue
        ctx = NhcbContext(trawl, tmpdir)
        interp = Interp(toks, decls, ctx, where)
        frame = Frame(name)
        ctx.frames.append(frame)
        params, _ = interp.signature(paren)
        try:
            interp.call_closure(Closure(name, params, body, [{}]), [TestingT(frame)], paren)
        except SubtestStop:
            pass
        interp.finish_frame(frame, body)
        if not ctx.records:
            raise GoError(f"{where}: builds no parser that run.py can follow")
        tests.append(NhcbTest(name, where, ctx.records, file))
    return tests


# --------------------------------------------------------------------------------------
# Entries: what Prometheus expects and what trawl reports, in one common form
# --------------------------------------------------------------------------------------

HINTS = {0: "unknown", 1: "reset", 2: "not-reset", 3: "gauge"}


class Hist:
    """A native histogram in one common form: Go's *histogram.Histogram (is_float False,
    counts int, buckets int64 deltas) or *histogram.FloatHistogram (is_float True,
    counts and buckets absolute floats)."""

    FIELDS = ("schema", "count", "sum", "zero_threshold", "zero_count", "positive_spans",
              "positive_buckets", "negative_spans", "negative_buckets", "custom_values", "hint")

    def __init__(self, is_float, **kw):
        self.is_float = is_float
        for f in self.FIELDS:
            setattr(self, f, kw[f])

    @classmethod
    def from_go(cls, d, is_float):
        """From an evaluated &histogram.Histogram{...} / &histogram.FloatHistogram{...}
        literal; a field left out is Go's zero value (hint 0 = UnknownCounterReset)."""
        num = float if is_float else int

        def spans(name):
            return [(int(x.get("Offset", 0)), int(x.get("Length", 0))) for x in d.get(name) or []]
        return cls(is_float, schema=int(d.get("Schema", 0)), count=num(d.get("Count", 0)),
                   sum=float(d.get("Sum", 0)), zero_threshold=float(d.get("ZeroThreshold", 0)),
                   zero_count=num(d.get("ZeroCount", 0)),
                   positive_spans=spans("PositiveSpans"), negative_spans=spans("NegativeSpans"),
                   positive_buckets=[num(x) for x in d.get("PositiveBuckets") or []],
                   negative_buckets=[num(x) for x in d.get("NegativeBuckets") or []],
                   custom_values=[float(x) for x in d.get("CustomValues") or []],
                   hint=int(d.get("CounterResetHint", 0)))

    @classmethod
    def from_trawl(cls, d):
        """From the "histogram" object of a trawl JSON line: float fields are Go-formatted
        strings; an integer histogram's counts and bucket deltas are JSON numbers."""
        is_float = d["float"]
        if not isinstance(is_float, bool):
            raise TrawlOutputError(f"histogram field float is {is_float!r}")

        def num(x):
            if is_float:
                return float(x)
            if not isinstance(x, int) or isinstance(x, bool):
                raise TrawlOutputError(f"integer histogram count {x!r} is not an integer")
            return x
        return cls(is_float, schema=int(d["schema"]), count=num(d["count"]), sum=float(d["sum"]),
                   zero_threshold=float(d["zero_threshold"]), zero_count=num(d["zero_count"]),
                   positive_spans=[(int(o), int(n)) for o, n in d["positive_spans"]],
                   negative_spans=[(int(o), int(n)) for o, n in d["negative_spans"]],
                   positive_buckets=[num(x) for x in d["positive_buckets"]],
                   negative_buckets=[num(x) for x in d["negative_buckets"]],
                   custom_values=[float(x) for x in d["custom_values"]], hint=int(d["hint"]))

    def show(self):
        def nums(xs):
            return "[" + ",".join(fmt_num(x) for x in xs) + "]"

        def spans(xs):
            return "[" + ",".join(f"{o}:{n}" for o, n in xs) + "]"
        s = (f"{'float' if self.is_float else 'int'} schema={self.schema} count={fmt_num(self.count)} "
             f"sum={fmt_num(self.sum)}")
        if self.zero_threshold or self.zero_count:
            s += f" zero_threshold={fmt_num(self.zero_threshold)} zero_count={fmt_num(self.zero_count)}"
        s += f" positive={spans(self.positive_spans)}{nums(self.positive_buckets)}"
        if self.negative_spans or self.negative_buckets:
            s += f" negative={spans(self.negative_spans)}{nums(self.negative_buckets)}"
        if self.custom_values:
            s += f" custom_values={nums(self.custom_values)}"
        return s + f" hint={HINTS.get(self.hint, self.hint)}"


def compare_hist(exp, got):
    """The histogram fields that differ (NaN equals NaN, as cmpopts.EquateNaNs)."""
    if exp.is_float != got.is_float:
        kind = {False: "integer (shs)", True: "float (fhs)"}
        return [f"histogram kind: {kind[exp.is_float]} vs trawl {kind[got.is_float]}"]
    diffs = []
    for f in Hist.FIELDS:
        x, y = getattr(exp, f), getattr(got, f)
        if isinstance(x, list):
            same = len(x) == len(y) and all(
                a == b if isinstance(a, tuple) else same_float(float(a), float(b)) for a, b in zip(x, y))
        else:
            same = same_float(float(x), float(y))
        if not same:
            if f == "hint":
                x, y = HINTS.get(x, x), HINTS.get(y, y)
            elif isinstance(x, list):
                x = "[" + ", ".join(str(a) if isinstance(a, tuple) else fmt_num(a) for a in x) + "]"
                y = "[" + ", ".join(str(a) if isinstance(a, tuple) else fmt_num(a) for a in y) + "]"
            else:
                x, y = fmt_num(x), fmt_num(y)
            diffs.append(f"histogram {f}: {x} vs trawl {y}")
    return diffs


class Entry:
    """kind: help/type/unit/series/histogram; name: m; the rest as in parsedEntry."""

    def __init__(self, kind, name, **kw):
        self.kind, self.name = kind, name
        self.text = kw.get("text")          # help text, type kind or unit
        self.labels = kw.get("labels")      # tuple of (bytes, bytes)
        self.value = kw.get("value")        # float (series)
        self.hist = kw.get("hist")          # Hist (histogram)
        self.ts = kw.get("ts")              # int or None
        self.exemplars = kw.get("exemplars", [])  # [(labels, value, ts or None)]
        self.st = kw.get("st", 0)           # start timestamp, 0 = none

    def key(self):
        return (self.kind, self.name)

    def show(self):
        if self.kind not in ("series", "histogram"):
            return f"{self.kind} {q(self.name)} {q(self.text)}"
        if self.kind == "histogram":
            s = f"histogram {q(self.name)} labels={show_labels(self.labels)} {self.hist.show()}"
        else:
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
                         for x in e.get("es") or []]
            common = dict(labels=e.get("lset", ()), ts=e.get("t"), exemplars=exemplars, st=int(e.get("st", 0)))
            if e.get("shs") is not None and e.get("fhs") is not None:
                raise TypeError("an expected entry with both shs and fhs")
            if e.get("shs") is not None or e.get("fhs") is not None:
                is_float = e.get("shs") is None
                out.append(Entry("histogram", m, hist=Hist.from_go(e["fhs" if is_float else "shs"], is_float),
                                 **common))
            else:
                out.append(Entry("series", m, value=float(e.get("v", 0)), **common))
    return out


def utf8(s):
    return s.encode("utf-8", "surrogateescape")


def proto_entry_bytes(lbls):
    """The series text `m` Prometheus's ProtobufParser gives a series or histogram
    (onSeriesOrHistogramUpdate): over the labels sorted by name, the value of __name__,
    and 0xff name 0xff value for each other label."""
    out = b""
    for n, v in sorted(lbls):
        out += v if n == b"__name__" else b"\xff" + n + b"\xff" + v
    return out


def trawl_entries(lines, proto=False):
    """trawl's JSON lines -> Entry list (comment and eof entries dropped). For a protobuf
    body (proto), trawl prints a series' labels as its series text; the series text
    compared is rebuilt from its labels as ProtobufParser builds it (proto_entry_bytes)."""
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
            lbls = labels_from((utf8(n), utf8(v)) for n, v in d["labels"])
            out.append(Entry("series", proto_entry_bytes(lbls) if proto else utf8(d["series"]), labels=lbls,
                             value=float(d["value"]), ts=d.get("timestamp"), exemplars=exemplars,
                             # Not printed by trawl yet; read it once it is (ms, null = none).
                             st=d.get("st") or 0))
        elif kind == "histogram":
            exemplars = [(labels_from((utf8(n), utf8(v)) for n, v in ex["labels"]),
                          float(ex["value"]), ex.get("timestamp"))
                         for ex in d.get("exemplars") or []]
            lbls = labels_from((utf8(n), utf8(v)) for n, v in d["labels"])
            out.append(Entry("histogram", proto_entry_bytes(lbls) if proto else utf8(d["series"]),
                             labels=lbls,
                             hist=Hist.from_trawl(d["histogram"]), ts=d.get("timestamp"),
                             exemplars=exemplars, st=d.get("st") or 0))
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
    sample = exp.kind in ("series", "histogram")
    if exp.name != got.name:
        diffs.append(f"{'series' if sample else 'name'}: {q(exp.name)} vs trawl {q(got.name)}")
    if not sample:
        if exp.text != got.text:
            diffs.append(f"{exp.kind}: {q(exp.text)} vs trawl {q(got.text)}")
        return diffs
    if "lset" not in ignored and set(exp.labels) != set(got.labels):
        diffs.append(f"labels: {show_labels(exp.labels)} vs trawl {show_labels(got.labels)}")
    if exp.kind == "series" and "v" not in ignored and not same_float(exp.value, got.value):
        diffs.append(f"value: {fmt_float(exp.value)} vs trawl {fmt_float(got.value)}")
    if exp.kind == "histogram" and "shs" not in ignored and "fhs" not in ignored:
        diffs += compare_hist(exp.hist, got.hist)
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


def fmt_num(x):
    """An int as is, a float as fmt_float, with a whole float shown without '.0'."""
    if isinstance(x, int):
        return str(x)
    if math.isfinite(x) and x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return fmt_float(x)


# --------------------------------------------------------------------------------------
# Running trawl
# --------------------------------------------------------------------------------------

class Run:
    """The outcome of one `trawl parse --json` run. entries: the compared Entry list;
    stream: every entry line as printed (comments included, eof and result not)."""

    def __init__(self, entries, ok, error, crashed, stream=()):
        self.entries, self.ok, self.error, self.crashed = entries, ok, error, crashed
        self.stream = list(stream)


def run_trawl(trawl, tmpdir, fmt, data, flags=()):
    """flags: trawl's options for the parser under test, e.g. --created-timestamps for
    WithOMParserSTSeriesSkipped (_created lines of counters, summaries and histograms
    are start timestamps, not series)."""
    path = os.path.join(tmpdir, "input.txt")
    with open(path, "wb") as f:
        f.write(data)
    cmd = [trawl, "parse", *flags, "--json", "--content-type", CONTENT_TYPES[fmt], path]
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
    return Run(trawl_entries(lines[:-1], proto=fmt == "proto"), result["result"] == "ok", msg, False,
               [d for d in lines[:-1] if d.get("entry") != "eof"])


# --------------------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------------------

class Tally:
    def __init__(self):
        self.cases = self.agree = self.extra = self.skipped = 0


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
            # Pair entries of the same kind, in order (a histogram with a histogram, not
            # with the classic series trawl reports in its place); the rest are lone.
            pairs, lone_exp, bi = [], [], b0
            for ai in range(a0, a1):
                bj = next((b for b in range(bi, b1) if got[b].kind == exp[ai].kind), None)
                if bj is None:
                    lone_exp.append(ai)
                else:
                    pairs.append((ai, bj))
                    bi = bj + 1
            paired = {b for _, b in pairs}
            lone_got = [b for b in range(b0, b1) if b not in paired]
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
            before = [ai for ai, bj in pairs if bj < bi]
            extra(before[-1] if before else a0 - 1, got[bi])  # the expected entry it follows
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


def print_nhcb_test(t, verbose, tally, skipped):
    """Print one interpreted test's parsers and their cases; fill tally and skipped."""
    if t.skip:
        out_line(f"== {t.name} ({t.file}; not run)")
        tally.skipped += 1
        skipped.append((t.name, t.skip))
        out_line(f"SKIP     {t.name}: {t.skip}")
        return
    names = {"entries": "entries", "steps": "read step by step", "skip": "some parsers skipped"}
    kinds = [names[k] for k in ("entries", "steps", "skip") if any(r.kind == k for r in t.records)]
    builders = sorted({"NewProtobufParser" if r.spec.call else "New" for r in t.records})
    out_line(f"== {t.name} ({t.file}; parser built by {' and '.join(builders)}; {', '.join(kinds)})")
    for r in t.records:
        spec = r.spec
        if r.kind == "skip":
            tally.skipped += 1
            n = f"; {r.n_expected} expected entries not compared" if r.n_expected is not None else ""
            skipped.append((spec.label, f"{spec.describe()}: {r.reason}{n}"))
            out_line(f"SKIP     {spec.label}: {spec.describe()}: {r.reason}{n}")
            continue
        out_line(f"   {spec.label}: {spec.describe()} -> {spec.command()}")
        if r.kind == "entries":
            skips_created = "--created-timestamps" in spec.flags
            compare_entries(spec.label, r.exp, r.run, set(), verbose, tally, skips_created)
            continue
        # steps: the require.* calls after p.Next() decide; one case
        tally.cases += 1
        if spec.failure is None:
            tally.agree += 1
            if verbose:
                out_line(f"agree    {spec.label}: every require.* after the parser's reads holds")
        else:
            out_line(f"DISAGREE {spec.label}: {spec.failure}")
        if verbose or spec.failure is not None:
            for line in spec.trace:
                out_line(f"    {line}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trawl")
    ap.add_argument("prometheus")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    trawl = os.path.abspath(args.trawl)

    try:
        tests = load_tests(args.prometheus)
        interp_files = load_interp_files(args.prometheus)
        schema_note = check_proto_schema(args.prometheus)
    except (GoError, OSError) as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 2

    summary = []
    skipped = []
    total = Tally()
    with tempfile.TemporaryDirectory(prefix="trawl-textparse-") as tmpdir:
        # The nhcbparse tests run trawl while their bodies are interpreted, before anything
        # is printed, so that a body the interpreter cannot follow stops the script first.
        try:
            nhcb_tests = run_interp_files(interp_files, trawl, tmpdir)
        except GoError as e:
            print(f"run.py: {e}", file=sys.stderr)
            return 2
        except (TrawlOutputError, KeyError, TypeError, ValueError) as e:
            print(f"run.py: {' / '.join(INTERP_TEST_FILES)}: cannot read trawl's output: {e!r}", file=sys.stderr)
            return 2
        for t in tests:
            tally = Tally()
            fmt_name = "Prometheus text" if t.fmt == "prom" else "OpenMetrics"
            out_line(f"== {t.name} ({fmt_name}; {t.shape}): {t.options}"
                     + (f"; not compared (reset by the test): {', '.join(sorted(t.ignored_fields))}"
                        if t.ignored_fields else ""))
            skips_created = "WithOMParserSTSeriesSkipped" in t.options
            for label, data, expected in t.inputs:
                try:
                    run = run_trawl(trawl, tmpdir, t.fmt, data,
                                    flags=["--created-timestamps"] if skips_created else [])
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
            summary.append((t.name, tally, {"entries": "case = expected entry", "errors": "case = input",
                                            "no-crash": "case = input"}[t.shape]))
        for t in nhcb_tests:
            tally = Tally()
            print_nhcb_test(t, args.verbose, tally, skipped)
            units = {"entries": "expected entry", "steps": "parser read step by step"}
            kinds = [units[k] for k in sorted({r.kind for r in t.records}) if k in units]
            summary.append((t.name, tally, "case = " + " or ".join(kinds) if kinds else "nothing compared"))
        for _, tally, _ in summary:
            total.cases += tally.cases
            total.agree += tally.agree
            total.extra += tally.extra
            total.skipped += tally.skipped

    print()
    print("Summary. A case is one expected entry of an entry table (comments not counted), "
          "one input of an error table or no-crash test, one parser of a test that reads it step by step.")
    width = max(len(name) for name, _, _ in summary)
    for name, tally, unit in summary:
        extra = f", {tally.extra} extra trawl entries" if tally.extra else ""
        skip = f", {tally.skipped} parser{'s' if tally.skipped != 1 else ''} skipped" if tally.skipped else ""
        print(f"  {name:<{width}} {tally.cases:4d} cases, {tally.agree:4d} agree  ({unit}{extra}{skip})")
    extra = f"; trawl reports {total.extra} entries Prometheus does not (EXTRA lines)" if total.extra else ""
    print(f"overall: {total.cases} cases, {total.agree} agree{extra}")
    print(f"protobuf bodies: metricFamiliesToProtobuf done by run.py; {schema_note}")
    if skipped:
        print(f"skipped, not compared ({len(skipped)} parsers):")
        for label, why in skipped:
            print(f"  {label}: {why}")
    return 0 if total.cases == total.agree and total.extra == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
