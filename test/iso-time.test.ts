// parseInstant must accept exactly the listed ISO 8601 / RFC 3339 shapes and refuse everything
// else with null; dexcomTime must write Dexcom's offset-less, fraction-less UTC form.
import { describe, expect, it } from "vitest";
import { dexcomTime, parseInstant } from "../shared/dexcom/iso-time.ts";

describe("parseInstant accepts", () => {
  const accepted: Array<[string, string]> = [
    // Date only: midnight UTC.
    ["2026-11-29", "2026-11-29T00:00:00.000Z"],
    // Minutes, seconds, and every separator.
    ["2026-11-29T10:07", "2026-11-29T10:07:00.000Z"],
    ["2026-11-29T10:07:05", "2026-11-29T10:07:05.000Z"],
    ["2026-11-29t10:07:05", "2026-11-29T10:07:05.000Z"],
    ["2026-11-29 10:07:05", "2026-11-29T10:07:05.000Z"],
    // Fractions: padded to milliseconds, digits past the third truncated (not rounded).
    ["2026-11-29T10:07:05.1", "2026-11-29T10:07:05.100Z"],
    ["2026-11-29T10:07:05.12", "2026-11-29T10:07:05.120Z"],
    ["2026-11-29T10:07:05.123", "2026-11-29T10:07:05.123Z"],
    ["2026-11-29T10:07:05.123999999", "2026-11-29T10:07:05.123Z"],
    ["2026-11-29T10:07:05.9999", "2026-11-29T10:07:05.999Z"],
    // Offsets in every spelling.
    ["2026-11-29T10:07:05Z", "2026-11-29T10:07:05.000Z"],
    ["2026-11-29T10:07:05z", "2026-11-29T10:07:05.000Z"],
    ["2026-11-29T10:07Z", "2026-11-29T10:07:00.000Z"],
    ["2026-11-29T10:07:05+02:30", "2026-11-29T07:37:05.000Z"],
    ["2026-11-29T10:07:05+0230", "2026-11-29T07:37:05.000Z"],
    ["2026-11-29T10:07:05+02", "2026-11-29T08:07:05.000Z"],
    ["2026-11-29T10:07:05-05:00", "2026-11-29T15:07:05.000Z"],
    ["2026-11-29T10:07:05-0500", "2026-11-29T15:07:05.000Z"],
    ["2026-11-29T10:07:05-05", "2026-11-29T15:07:05.000Z"],
    ["2026-11-29T10:07:05+00:00", "2026-11-29T10:07:05.000Z"],
    ["2026-11-29T10:07:05-00:00", "2026-11-29T10:07:05.000Z"],
    ["2026-11-29T10:07:05.5+01:00", "2026-11-29T09:07:05.500Z"],
    ["2026-11-29T10:07:05+23:59", "2026-11-28T10:08:05.000Z"],
    ["2026-11-29T10:07:05-23:59", "2026-11-30T10:06:05.000Z"],
    // Offsets moving the instant across day, month and year boundaries.
    ["2026-11-29T23:30:00-01:00", "2026-11-30T00:30:00.000Z"],
    ["2026-11-30T23:00:00-02:00", "2026-12-01T01:00:00.000Z"],
    ["2026-12-31T22:00:00-03:00", "2027-01-01T01:00:00.000Z"],
    ["2027-01-01T00:30:00+01:00", "2026-12-31T23:30:00.000Z"],
    ["2024-03-01T01:00:00+02:00", "2024-02-29T23:00:00.000Z"],
    // Calendar edges.
    ["2024-02-29", "2024-02-29T00:00:00.000Z"],
    ["2000-02-29", "2000-02-29T00:00:00.000Z"],
    ["2026-04-30", "2026-04-30T00:00:00.000Z"],
    ["2026-01-31T23:59:59.999", "2026-01-31T23:59:59.999Z"],
    ["2026-11-29T00:00:00", "2026-11-29T00:00:00.000Z"],
    // Small and large years keep their digits (no 1900 remapping).
    ["0050-06-15T12:00:00Z", "0050-06-15T12:00:00.000Z"],
    ["0001-01-01", "0001-01-01T00:00:00.000Z"],
    ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000Z"],
  ];

  it.each(accepted)("%s", (text, expected) => {
    const parsed = parseInstant(text);
    expect(parsed).toBeInstanceOf(Date);
    expect(parsed?.toISOString()).toBe(expected);
  });
});

describe("parseInstant refuses", () => {
  const refused: string[] = [
    "",
    " ",
    // Calendar and clock limits.
    "2026-13-01",
    "2026-00-01",
    "2026-01-00",
    "2026-01-32",
    "2026-02-30",
    "2023-02-29",
    "1900-02-29",
    "2026-04-31",
    "2026-11-29T24:00:00",
    "2026-11-29T24:00",
    "2026-11-29T10:60:00",
    "2026-11-29T10:00:60",
    "2026-11-29T10:00:00+24:00",
    "2026-11-29T10:00:00+23:60",
    "2026-11-29T10:00:00-24",
    "0000-01-01",
    // Whitespace around the text.
    "  2026-11-29",
    "2026-11-29 ",
    "2026-11-29\n",
    "\t2026-11-29T10:00:00Z",
    // Incomplete or malformed time and fraction.
    "2026-11-29T10",
    "2026-11-29T",
    "2026-11-29T1:00",
    "2026-11-29T10:0",
    "2026-11-29T10:00:0",
    "2026-11-29T10:00.5",
    "2026-11-29T10:00:00.",
    "2026-11-29T10:00:00.1234567890",
    "2026-11-29T10:00:00,5",
    "2026-11-29  10:00:00",
    "2026-11-29_10:00:00",
    // Malformed offsets, and offsets without a time.
    "2026-11-29T10:00:00+2",
    "2026-11-29T10:00:00+02:",
    "2026-11-29T10:00:00+02:3",
    "2026-11-29T10:00:00+023",
    "2026-11-29T10:00:00 +02:00",
    "2026-11-29T10:00:00ZZ",
    "2026-11-29T10:00:00Z+01:00",
    "2026-11-29T10:00:00Zjunk",
    "2026-11-29Z",
    "2026-11-29+01:00",
    // Other date shapes.
    "20261129",
    "20261129T100000Z",
    "2026-11",
    "2026",
    "26-11-29",
    "2026-1-29",
    "2026-11-9",
    "+002026-01-01",
    "-000001-01-01",
    "12026-01-01",
    "2026-W48-7",
    "2026-333",
    "2026/11/29",
    "29-11-2026",
    "Nov 29 2026",
    "Sun, 29 Nov 2026 10:00:00 GMT",
    // Digits that are not ASCII, and numbers as strings.
    "２０２６-11-29",
    "1700000000",
    "1700000000000",
    "0",
    "NaN",
  ];

  it.each(refused)("%j", (text) => {
    expect(parseInstant(text)).toBeNull();
  });

  it("returns null instead of throwing for a non-string from untyped callers", () => {
    expect(parseInstant(1700000000 as unknown as string)).toBeNull();
    expect(parseInstant(undefined as unknown as string)).toBeNull();
  });
});

describe("dexcomTime", () => {
  const formatted: Array<[string, string]> = [
    // Milliseconds dropped, never rounded up into the next second.
    ["2026-11-29T10:07:05.999Z", "2026-11-29T10:07:05"],
    ["2026-11-29T10:07:05.001Z", "2026-11-29T10:07:05"],
    ["2026-11-29T00:00:00.000Z", "2026-11-29T00:00:00"],
    ["0050-06-15T12:00:00.000Z", "0050-06-15T12:00:00"],
  ];

  it.each(formatted)("%s -> %s", (iso, expected) => {
    expect(dexcomTime(new Date(iso))).toBe(expected);
  });

  it("writes UTC whatever the input's offset was", () => {
    expect(dexcomTime(parseInstant("2026-12-31T22:00:00.750-03:00")!)).toBe("2027-01-01T01:00:00");
  });

  it("throws RangeError for an invalid Date or a year toISOString would sign", () => {
    expect(() => dexcomTime(new Date(Number.NaN))).toThrow(RangeError);
    expect(() => dexcomTime(new Date("+010000-01-01T00:00:00Z"))).toThrow(RangeError);
    expect(() => dexcomTime(new Date("-000001-01-01T00:00:00Z"))).toThrow(RangeError);
  });

  it.each([
    "2026-11-29T10:07:05.678Z",
    "2024-02-29T23:59:59.999Z",
    "0050-06-15T12:34:56.789Z",
    "9999-12-31T23:59:59.999Z",
  ])("round-trips %s through parseInstant to the whole second", (iso) => {
    const date = new Date(iso);
    const text = dexcomTime(date);
    const back = parseInstant(text);
    expect(back?.getTime()).toBe(Math.floor(date.getTime() / 1000) * 1000);
    expect(dexcomTime(back!)).toBe(text);
  });
});
