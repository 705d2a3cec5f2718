// Which `tz` GET /glucose-summary takes: an IANA time zone identifier, and nothing that merely
// resembles one. Both readers of the name are lenient in their own ways: ICU (Deno's recent V8)
// takes offsets such as "+05:00" and "-03", legacy names such as "EST5EDT" and abbreviations such
// as "EST" or "CET"; Postgres reads "+05:00" as a POSIX rule (sign inverted: UTC-5) and any name
// in its abbreviation list as a fixed offset ("CET" never has summer time there, while ICU reads
// it as Europe/Brussels). Only the identifier's form keeps the two meaning the same thing.

/**
 * The areas of the IANA database's location-based names (the continents and oceans of tzdata's
 * zone.tab), and `Etc`, its zones of fixed offset. The legacy backward links (US/Eastern,
 * Canada/Pacific, SystemV/EST5, ...) have other first parts.
 */
const AREAS = ["Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific", "Etc"];

// An area and one or two more parts (America/Argentina/Buenos_Aires has three in all), each of the
// characters IANA names use (Etc/GMT+5 needs the digit and the plus), or UTC or GMT alone (GMT
// is what some phones report for UTC, and means it everywhere). Case is
// ignored, as both ICU and Postgres ignore it. Anchored whole, so no space or offset slips in.
const IDENTIFIER = new RegExp(`^(?:UTC|GMT|(?:${AREAS.join("|")})(?:/[A-Za-z0-9_+-]{1,30}){1,2})$`, "i");

/**
 * The IANA time zone named by `text`, spelt as ICU resolves it (case corrected, "utc" to "UTC",
 * some links to their zone: "America/Argentina/Buenos_Aires" to "America/Buenos_Aires"), which
 * Postgres knows by the same name; null when `text` is not an IANA zone identifier.
 *
 * The rule: `text` is `UTC` or `GMT`, or `Area/Location` (optionally `Area/Region/Location`) with Area one
 * of Africa, America, Antarctica, Arctic, Asia, Atlantic, Australia, Europe, Indian, Pacific or Etc
 * (so Europe/Berlin, America/Argentina/Buenos_Aires, Etc/UTC, Etc/GMT+5, which is UTC-5 as IANA
 * defines it), in any case; and ICU knows it. Refused: offsets ("+05:00", "UTC+5", "-03"), POSIX
 * TZ strings ("EST5EDT", "<+05>-5"), abbreviations and the legacy names IANA keeps only as
 * backward links ("EST", "CET", "PST", "US/Eastern"): their meaning differs between ICU
 * and Postgres, or between people, where a location's name means one thing everywhere.
 *
 * A zone ICU knows and the database does not (tz data older than ICU's) still fails in the
 * query (see isUnknownTimeZone in summary.ts).
 */
export function ianaTimeZone(text: string): string | null {
  if (!IDENTIFIER.test(text)) return null;
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: text }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}
