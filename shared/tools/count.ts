/** A number of rows as every command prints it: 5,500. */
export function count(n: number): string {
  return n.toLocaleString("en-US");
}
