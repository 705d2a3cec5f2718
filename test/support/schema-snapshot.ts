import type { Queryable } from "../../shared/db/database.ts";

const USER_SCHEMAS = `n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'`;

// Cluster-wide, so only the roles the Supabase bootstrap makes: other databases on the test server
// may come and go with roles of their own meanwhile.
const BOOTSTRAP_ROLES = `('anon', 'authenticated', 'service_role', 'authenticator')`;

const QUERIES = {
  schemas: `SELECT n.nspname || ' ' || coalesce(n.nspacl::text, '') AS item FROM pg_namespace n WHERE ${USER_SCHEMAS}`,
  relations: `SELECT n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(c.relacl::text, '') AS item
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${USER_SCHEMAS}`,
  functions: `SELECT p.oid::regprocedure::text || ' ' || coalesce(p.proacl::text, '') AS item
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${USER_SCHEMAS}`,
  defaultPrivileges: `SELECT pg_get_userbyid(d.defaclrole) || ' ' || coalesce(n.nspname, '') || ' ' || d.defaclobjtype::text
      || ' ' || d.defaclacl::text AS item
    FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace`,
  roles: `SELECT rolname || ' ' || rolcanlogin::text || ' ' || rolbypassrls::text AS item FROM pg_roles WHERE rolname IN ${BOOTSTRAP_ROLES}`,
  memberships: `SELECT r.rolname || ' in ' || g.rolname AS item FROM pg_auth_members m
    JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
    WHERE r.rolname IN ${BOOTSTRAP_ROLES} OR g.rolname IN ${BOOTSTRAP_ROLES}`,
  extensions: `SELECT extname AS item FROM pg_extension`,
};

export type SchemaSnapshot = Record<keyof typeof QUERIES, string[]>;

/**
 * What a migration run could leave in a database, as sorted lines: its schemas, tables and other
 * relations, functions, with their grants; default privileges; the bootstrap's roles and their
 * memberships; extensions. Two equal snapshots: nothing of that changed.
 */
export async function schemaSnapshot(db: Queryable): Promise<SchemaSnapshot> {
  const snapshot = {} as SchemaSnapshot;
  for (const [name, sql] of Object.entries(QUERIES) as [keyof typeof QUERIES, string][]) {
    snapshot[name] = (await db.query<{ item: string }>(sql)).map((row) => row.item).sort();
  }
  return snapshot;
}
