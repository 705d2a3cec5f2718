import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBackend, type TestBackend } from "./support/backend.ts";

let backend: TestBackend;
beforeAll(async () => (backend = await startTestBackend()));
afterAll(() => backend.close());

describe("POST /users", () => {
  it("registers a new caller with 201, then refreshes with 200", async () => {
    const token = await backend.token("alice-uid", { email: "Alice@Example.COM", email_verified: true });
    const created = await backend.call("users", { method: "POST", token });
    expect(created.status).toBe(201);
    expect(created.body.user).toMatchObject({ firebase_uid: "alice-uid", email: "alice@example.com", dexcom_user_id: null, is_active: true });
    const again = await backend.call("users", { method: "POST", token });
    expect(again.status).toBe(200);
    expect(again.body.user.id).toBe(created.body.user.id);
  });
});
