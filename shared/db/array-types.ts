import { parse } from "postgres-array";

// postgres.js learns array types by a query on each new connection (fetch_types), which we turn
// off: it runs unawaited, so a pooler's error there ends the process. These are the built-in array
// types it would have learnt, declared instead: parameters are written as array literals, results
// parsed (with postgres-array, node-postgres's parser), elements as postgres.js reads the scalars.

type Scalar = string | number | boolean | Date | null;
type Nested = Scalar | Nested[];

const text = (value: string) => value;
const number = (value: string) => Number(value);
const boolean = (value: string) => value === "t";
const date = (value: string) => new Date(value);

// array type oid: element reader (PostgreSQL's pg_type; int8 and numeric stay strings, as postgres.js reads them)
const ELEMENTS: Record<number, (value: string) => Scalar> = {
  1000: boolean, // bool[]
  1005: number, // int2[]
  1007: number, // int4[]
  1016: text, // int8[]
  1021: number, // float4[]
  1022: number, // float8[]
  1231: text, // numeric[]
  1009: text, // text[]
  1015: text, // varchar[]
  1014: text, // bpchar[]
  2951: text, // uuid[]
  1185: date, // timestamptz[]
  1115: date, // timestamp[]
};

/** The `types` option of a postgres.js pool: every array type above, both ways. */
export function builtinArrayTypes(): Record<string, { to: number; from: number[]; serialize: (value: unknown) => string; parse: (value: string) => unknown }> {
  return Object.fromEntries(Object.entries(ELEMENTS).map(([oid, element]) => [
    `array_${oid}`,
    { to: Number(oid), from: [Number(oid)], serialize, parse: (value: string) => parse(value, element) },
  ]));
}

// A string is already a literal (keys:rotate passes '{1,2}' for ::int[], which both drivers take).
const serialize = (value: unknown) => typeof value === "string" ? value : arrayLiteral(value as Nested);

/** A JS array as a Postgres array literal: `{"a","b\"c",NULL}`; nested arrays become dimensions. */
export function arrayLiteral(value: Nested): string {
  if (Array.isArray(value)) return `{${value.map(arrayLiteral).join(",")}}`;
  if (value === null || value === undefined) return "NULL";
  const scalar = value instanceof Date ? value.toISOString() : typeof value === "boolean" ? (value ? "t" : "f") : String(value);
  return `"${scalar.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
