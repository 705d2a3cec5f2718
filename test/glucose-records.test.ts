// readingRows: Dexcom's egvs records as rows for dms.store_glucose_readings, as leniently as the
// reference demands (shared/reference/dexcom-api.md, "Data"): odd records are kept with their odd
// fields as null or as sent, only a record without an identity or a readable time is skipped, and
// a batch is never rejected for one record. Storing such batches in Postgres is in
// glucose-readings.test.ts.
import { describe, expect, it } from "vitest";
import { readingRows } from "../shared/glucose/records.ts";

/** A record as Dexcom's egvs v3 sends it, with overrides (undefined removes a field). */
function record(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const result: Record<string, unknown> = {
    recordId: "3c5f6a2e-1d0b-4c39-9a55-6f0d1f6b2a01",
    systemTime: "2026-03-01T12:00:00",
    displayTime: "2026-03-01T13:00:00+01:00",
    transmitterId: "8GK3X1",
    transmitterTicks: 1_234_567,
    value: 123,
    status: "ok",
    trend: "flat",
    trendRate: -0.5,
    unit: "mg/dL",
    rateUnit: "mg/dL/min",
    displayDevice: "iOS",
    transmitterGeneration: "g7",
    ...overrides,
  };
  for (const [key, value] of Object.entries(result)) if (value === undefined) delete result[key];
  return result;
}

/** The one row a single record gives (fails when it was skipped). */
function rowOf(overrides: Record<string, unknown>) {
  const { rows, skipped } = readingRows([record(overrides)]);
  expect(skipped).toBe(0);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

/** Whether a record with these overrides is skipped (and counted), the batch's other record kept. */
function isSkipped(overrides: Record<string, unknown>): boolean {
  const kept = record({ recordId: "kept" });
  const { rows, skipped } = readingRows([record(overrides), kept]);
  expect(rows.map((row) => row.record_id)).toContain("kept");
  expect(rows.length + skipped).toBe(2);
  return skipped === 1;
}

describe("readingRows", () => {
  it("turns a well-formed record into a row with the table's column names", () => {
    expect(readingRows([record()])).toEqual({
      rows: [{
        record_id: "3c5f6a2e-1d0b-4c39-9a55-6f0d1f6b2a01",
        system_time: "2026-03-01T12:00:00.000Z",
        display_time: "2026-03-01T13:00:00+01:00",
        value: 123,
        unit: "mg/dL",
        status: "ok",
        trend: "flat",
        trend_rate: -0.5,
        rate_unit: "mg/dL/min",
        display_device: "iOS",
        transmitter_generation: "g7",
        transmitter_id: "8GK3X1",
        transmitter_ticks: 1_234_567,
      }],
      skipped: 0,
    });
  });

  it("keeps a record whose value and status are null (a low/high reading, or a gap)", () => {
    const row = rowOf({ value: null, status: null, trend: null, trendRate: null, transmitterId: null });
    expect(row).toMatchObject({ value: null, status: null, trend: null, trend_rate: null, transmitter_id: null });
    expect(row.record_id).toBe("3c5f6a2e-1d0b-4c39-9a55-6f0d1f6b2a01");
  });

  it("keeps unknown enum values exactly as sent", () => {
    const row = rowOf({
      trend: "sidewaysUp",
      status: "sensorWarmup",
      unit: "unknown",
      displayDevice: "wearOS",
      transmitterGeneration: "g715day",
    });
    expect(row).toMatchObject({
      trend: "sidewaysUp",
      status: "sensorWarmup",
      unit: "unknown",
      display_device: "wearOS",
      transmitter_generation: "g715day",
    });
    expect(rowOf({ transmitterGeneration: "g6 pro" }).transmitter_generation).toBe("g6 pro");
  });

  it("keeps displayTime exactly as sent, without seconds or with any offset, and null when not a string", () => {
    expect(rowOf({ displayTime: "2026-03-01T13:00" }).display_time).toBe("2026-03-01T13:00");
    expect(rowOf({ displayTime: "2026-03-01T13:00:00+01:00:00" }).display_time).toBe("2026-03-01T13:00:00+01:00:00");
    expect(rowOf({ displayTime: "not a time at all" }).display_time).toBe("not a time at all");
    expect(rowOf({ displayTime: null }).display_time).toBeNull();
    expect(rowOf({ displayTime: 1_772_366_400 }).display_time).toBeNull();
    expect(rowOf({ displayTime: undefined }).display_time).toBeNull();
  });

  it("reads systemTime without seconds, without an offset (UTC), with a fraction or Z", () => {
    expect(rowOf({ systemTime: "2026-03-01T12:05" }).system_time).toBe("2026-03-01T12:05:00.000Z");
    expect(rowOf({ systemTime: "2026-03-01T12:05:07" }).system_time).toBe("2026-03-01T12:05:07.000Z");
    expect(rowOf({ systemTime: "2026-03-01T12:05:07.25Z" }).system_time).toBe("2026-03-01T12:05:07.250Z");
    expect(rowOf({ systemTime: "2026-03-01 12:05:07" }).system_time).toBe("2026-03-01T12:05:07.000Z");
  });

  it("applies an offset, including one without seconds in the time and one with seconds of its own", () => {
    expect(rowOf({ systemTime: "2026-03-01T13:00:00+01:00" }).system_time).toBe("2026-03-01T12:00:00.000Z");
    expect(rowOf({ systemTime: "2026-03-01T07:00-05:00" }).system_time).toBe("2026-03-01T12:00:00.000Z");
    expect(rowOf({ systemTime: "2026-03-01T13:00:00+0100" }).system_time).toBe("2026-03-01T12:00:00.000Z");
    // Offsets with seconds: every part of the offset counts.
    expect(rowOf({ systemTime: "2026-03-01T13:00:00+01:00:00" }).system_time).toBe("2026-03-01T12:00:00.000Z");
    expect(rowOf({ systemTime: "2026-03-01T13:00:30+01:00:30" }).system_time).toBe("2026-03-01T12:00:00.000Z");
    expect(rowOf({ systemTime: "2026-03-01T11:59:30-00:00:30" }).system_time).toBe("2026-03-01T12:00:00.000Z");
    expect(rowOf({ systemTime: "2026-03-01T13:00+01:00:00" }).system_time).toBe("2026-03-01T12:00:00.000Z");
  });

  it("skips and counts what is not a record at all, keeping the rest of the batch", () => {
    const good = [record({ recordId: "a" }), record({ recordId: "b" })];
    const { rows, skipped } = readingRows([42, good[0], null, [], "record", true, good[1]]);
    expect(skipped).toBe(5);
    expect(rows.map((row) => row.record_id)).toEqual(["a", "b"]);
  });

  it("skips a record without a usable recordId", () => {
    expect(isSkipped({ recordId: undefined })).toBe(true);
    expect(isSkipped({ recordId: null })).toBe(true);
    expect(isSkipped({ recordId: "" })).toBe(true);
    expect(isSkipped({ recordId: 17 })).toBe(true);
    expect(isSkipped({ recordId: { id: "x" } })).toBe(true);
    expect(isSkipped({ recordId: "x".repeat(256) })).toBe(true);
    // Text Postgres cannot hold would make the batch's statement fail.
    expect(isSkipped({ recordId: "a\u0000b" })).toBe(true);
    expect(isSkipped({ recordId: "a\ud800b" })).toBe(true);
    // The limits' other side.
    expect(isSkipped({ recordId: "x".repeat(255) })).toBe(false);
    expect(isSkipped({ recordId: "7" })).toBe(false);
  });

  it("skips a record whose systemTime cannot be read", () => {
    for (const systemTime of [
      undefined,
      null,
      1_772_366_400,
      "",
      "yesterday",
      "2026-03-01", // no time of day: where in the day would it go?
      "2026-02-30T12:00:00", // no such day
      "2026-03-01T24:00:00",
      "2026-03-01T12:60:00",
      "2026-03-01T12:00:00+01:00:60",
      "2026-03-01T12:00:00+25:00",
      "2026-03-01T12",
      "0001-01-01T00:30:00+01:00", // before year 1 in UTC
      "9999-12-31T23:30:00-01:00", // after 9999 in UTC
    ]) {
      expect(isSkipped({ systemTime }), String(systemTime)).toBe(true);
    }
    // Surrounding whitespace is not worth losing a reading for.
    expect(isSkipped({ systemTime: " 2026-03-01T12:00:00 " })).toBe(false);
  });

  it("keeps the last of records sent twice in one batch, in the place it last appeared", () => {
    const { rows, skipped } = readingRows([
      record({ recordId: "r1", value: 100 }),
      record({ recordId: "r2", value: 110 }),
      record({ recordId: "r1", value: 101, status: "high" }),
      record({ recordId: "r3", value: 120 }),
    ]);
    expect(skipped).toBe(0);
    expect(rows.map((row) => [row.record_id, row.value, row.status])).toEqual([
      ["r2", 110, "ok"],
      ["r1", 101, "high"],
      ["r3", 120, "ok"],
    ]);
  });

  it("stores an absurd or non-numeric value as null, and keeps values within the sane range", () => {
    expect(rowOf({ value: 1e9 }).value).toBeNull();
    expect(rowOf({ value: 100_000.5 }).value).toBeNull();
    expect(rowOf({ value: -1000.5 }).value).toBeNull();
    expect(rowOf({ value: "120" }).value).toBeNull();
    expect(rowOf({ value: Number.POSITIVE_INFINITY }).value).toBeNull();
    expect(rowOf({ value: Number.NaN }).value).toBeNull();
    expect(rowOf({ value: 100_000 }).value).toBe(100_000);
    expect(rowOf({ value: -1000 }).value).toBe(-1000);
    expect(rowOf({ value: 5.5, unit: "mmol/L" })).toMatchObject({ value: 5.5, unit: "mmol/L" });
    expect(rowOf({ value: 0 }).value).toBe(0);
  });

  it("keeps numbers only when they are numbers of the right kind", () => {
    expect(rowOf({ trendRate: "1.5" }).trend_rate).toBeNull();
    expect(rowOf({ trendRate: Number.NEGATIVE_INFINITY }).trend_rate).toBeNull();
    expect(rowOf({ trendRate: 1e300 }).trend_rate).toBe(1e300);
    expect(rowOf({ transmitterTicks: 1.5 }).transmitter_ticks).toBeNull();
    expect(rowOf({ transmitterTicks: 2 ** 53 }).transmitter_ticks).toBeNull();
    expect(rowOf({ transmitterTicks: "123" }).transmitter_ticks).toBeNull();
    expect(rowOf({ transmitterTicks: 2 ** 53 - 1 }).transmitter_ticks).toBe(2 ** 53 - 1);
  });

  it("stores strings of the wrong type, absurd length or unstorable text as null", () => {
    expect(rowOf({ status: 1, trend: ["flat"], unit: { u: "mg/dL" }, rateUnit: true })).toMatchObject({
      status: null,
      trend: null,
      unit: null,
      rate_unit: null,
    });
    expect(rowOf({ transmitterId: "x".repeat(256) }).transmitter_id).toBeNull();
    expect(rowOf({ transmitterId: "x".repeat(255) }).transmitter_id).toBe("x".repeat(255));
    expect(rowOf({ trend: "fl\u0000at" }).trend).toBeNull();
    expect(rowOf({ displayDevice: "\udc00iOS" }).display_device).toBeNull();
    expect(rowOf({ displayTime: "2026-03-01T13:00\u0000" }).display_time).toBeNull();
    // A proper surrogate pair is ordinary text.
    expect(rowOf({ displayDevice: "iOS 📱" }).display_device).toBe("iOS 📱");
  });

  it("ignores fields it does not know, and inherited ones", () => {
    const row = rowOf({ recordType: "egv", extra: { nested: true }, userId: "someone", smoothedValue: 7 });
    expect(Object.keys(row).sort()).toEqual([
      "display_device", "display_time", "rate_unit", "record_id", "status", "system_time",
      "transmitter_generation", "transmitter_id", "transmitter_ticks", "trend", "trend_rate", "unit", "value",
    ]);
    const inherited = Object.create({ status: "ok" }) as Record<string, unknown>;
    Object.assign(inherited, { recordId: "r", systemTime: "2026-03-01T12:00:00" });
    expect(readingRows([inherited]).rows[0]!.status).toBeNull();
  });

  it("gives no rows for records that are not an array, and for an empty one", () => {
    for (const records of [undefined, null, {}, "records", 3]) {
      expect(readingRows(records)).toEqual({ rows: [], skipped: 0 });
    }
    expect(readingRows([])).toEqual({ rows: [], skipped: 0 });
  });
});
