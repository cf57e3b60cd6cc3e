// A suite may skip when this machine lacks a binary or privilege, except in CI (REQUIRE_E2E=1), where
// the same gap must fail loudly instead of passing by running nothing.
export const e2eRequired = process.env['REQUIRE_E2E'] === '1';

/** Returns true when the suite should run; false (skip) only outside CI; throws in CI. */
export function requirement(met: boolean, what: string): boolean {
  if (met) return true;
  if (e2eRequired) throw new Error(`REQUIRE_E2E=1 and this machine lacks ${what}`);
  console.warn(`skipping: this machine lacks ${what}`);
  return false;
}
