// The migrations this code needs, by version: what `GET /health` checks the database has applied.
// Deployed functions cannot read supabase/migrations, so the list is here; a test keeps it equal to
// that folder (add a migration there and the test names the version to add here).
export const SHIPPED_MIGRATIONS: readonly string[] = [
  "20261127000001",
  "20261127000002",
  "20261127000003",
  "20261127000004",
  "20261127000005",
  "20261127000006",
  "20261129000001",
  "20261129000002",
  "20261129000003",
  "20261129000004",
];
