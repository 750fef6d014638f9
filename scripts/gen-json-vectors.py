#!/usr/bin/env python3
"""Writes fixtures/json/canonical-vectors.json: canonical JSON test vectors.

Each vector is {"name", "input", "canonical"}: `input` is a JSON text (as a
string), `canonical` is what Python's

    json.dumps(json.loads(input), sort_keys=True, separators=(",", ":"),
               ensure_ascii=True)

makes of it, which is how every Python SOCP peer serializes a payload before
signing it (docs/socp-1.3.md section 3). core/tests/wire_canonical.rs checks
that socp_core::wire::json reproduces every one byte for byte.

Run from the repository root:  python3 scripts/gen-json-vectors.py
The output is deterministic; re-running it must not change the file.
"""

import json
import os
import sys


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# (name, input JSON text). Texts rather than Python objects so that number
# literals (1E2, -0, 1e400) reach the parser exactly as a peer would send them.
CASES = [
    # socp-1.3.md section 4, case 1.
    ("spec case 1", '{"b":1,"a":{"d":2,"c":"\u00e9"}}'),
    # Whitespace and layout.
    ("whitespace everywhere", ' {\n  "b" : [ 1 , 2 ] ,\t"a" : { } \r\n}\n'),
    ("empty object", "{}"),
    ("empty array", "[]"),
    ("empty containers nested", '{"a":[],"b":{},"c":[[],{}],"d":[{}]}'),
    ("literals", '{"t":true,"f":false,"n":null}'),
    ("top-level string", '"just a string"'),
    ("top-level number", "42"),
    ("top-level null", "null"),
    # Key order.
    ("nested sorting", '{"z":{"y":{"x":1,"w":2},"v":3},"a":[{"c":1,"b":2}]}'),
    ("key prefixes", '{"ab":1,"a":2,"abc":3,"b":4,"":5}'),
    ("case sorts upper first", '{"b":1,"B":2,"a":3,"A":4,"_":5}'),
    ("unicode keys by code point",
     '{"\u00e9":1,"e":2,"\uffff":3,"\U0001f600":4,"\u0100":5,"z":6,"\ue000":7}'),
    ("astral key after BMP private use", '{"\U00010000":1,"\uffef":2}'),
    # Strings.
    ("latin-1 and BMP", '["caf\u00e9","\u00fc\u00df","\u4e2d\u6587","\u20ac"]'),
    ("astral chars", '["\U0001f600","\U0001f468\u200d\U0001f469","\U0010ffff","\U00010000"]'),
    ("escaped astral input", '["\\ud83d\\ude00"]'),
    ("DEL and C1 controls", '["\u007f","\u0080","\u009f","a\u007fb"]'),
    ("short escapes", '["\\n\\r\\t\\b\\f","\\"","\\\\","\\/"]'),
    ("control chars", '["\\u0000","\\u0001","\\u001f","\\u000b","\\u001b[0m"]'),
    ("printable ASCII", '[" !#$%&\'()*+,-./0123456789:;<=>?@AZ[]^_`az{|}~"]'),
    ("uppercase hex escapes in input", '["\\u00E9\\u00C9"]'),
    ("line and paragraph separators", '["\u2028\u2029\u0085"]'),
    ("bom and specials", '["\ufeff","\ufffd","\ufffe"]'),
    ("long base64url-like", '{"ciphertext":"' + "AbC-_9" * 120 + '"}'),
    # Integers.
    ("small ints", "[0,1,-1,42,-42,1700000000000]"),
    ("negative zero int", "[-0]"),
    ("i64 and u64 edges",
     "[9223372036854775807,-9223372036854775808,18446744073709551615,18446744073709551616]"),
    ("big ints", "[1180591620717411303424,-1208925819614629174706176]"),
    ("huge int", "[" + str(3 ** 200) + "," + str(-(7 ** 150)) + "]"),
    # Floats in every formatting regime.
    ("integral floats", "[1.0,100000.0,-2.0,0.0,-0.0,1e0,1E2,5e3]"),
    ("simple fractions", "[0.5,0.1,0.2,0.30000000000000004,3.14159,-2.5]"),
    ("thirds", "[0.3333333333333333,0.6666666666666666,1.3333333333333333]"),
    ("fixed upper boundary", "[1e15,9999999999999998.0,999999999999999.9,1e16,1.5e16]"),
    ("fixed lower boundary", "[0.0001,0.00012,0.00009999,1e-5,0.00001,9.9e-05]"),
    ("large scientific",
     "[1e22,1e100,123456789012345680.0,1.2345678901234568e+17,1.7976931348623157e308]"),
    ("small scientific", "[1e-7,2.5e-10,5e-324,2.2250738585072014e-308,-1e-300]"),
    ("exponent spellings", "[1e+2,1E-2,1e02,12e-1,0.5e1,100e-2]"),
    ("trailing zeros", "[1.50,1.000,0.10,100.000]"),
    ("many digits", "[0.1000000000000000055511151231257827,3.141592653589793238462643]"),
    ("round to even", "[9007199254740993.0,9007199254740995.0,2.0000000000000001]"),
    ("overflow to infinity", "[1e400,-1e400,1.8e308]"),
    ("underflow to zero", "[1e-400,-1e-400]"),
    ("zero with exponent", "[0e0,0E5,0.0e-10,-0e3]"),
    ("float keys mixed", '{"f":1.0,"i":1,"s":"1","n":null}'),
    # Realistic SOCP payloads.
    ("USER_ADVERTISE payload",
     '{"user_id":"3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b","server_id":"a1b2c3d4-0000-4000-8000-000000000001",'
     '"meta":{"display_name":"Zo\u00eb \U0001f680","pronouns":"they/them","age":30,"extras":{"z":[],"a":{}}},'
     '"pubkey":"MIICIjANBgkq"}'),
    ("duplicate keys keep the last", '{"a":1,"b":2,"a":3}'),
]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    vectors = []
    for name, text in CASES:
        vectors.append({
            "name": name,
            "input": text,
            "canonical": canonical(json.loads(text)),
        })
    doc = {
        "description": "Canonical JSON vectors: canonical = json.dumps(json.loads(input), "
                       "sort_keys=True, separators=(',', ':'), ensure_ascii=True). "
                       "Generated by scripts/gen-json-vectors.py; do not edit.",
        "vectors": vectors,
    }
    path = os.path.join(root, "fixtures", "json", "canonical-vectors.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        json.dump(doc, out, indent=1, ensure_ascii=True)
        out.write("\n")
    print(f"wrote {len(vectors)} vectors to {os.path.relpath(path, root)}")


if __name__ == "__main__":
    main()
