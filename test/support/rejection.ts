/** What a promise rejected with; fails when it resolves. */
export async function rejection(attempt: Promise<unknown>): Promise<unknown> {
  try {
    await attempt;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}
