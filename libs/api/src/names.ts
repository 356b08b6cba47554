/** Docker's container name rule (with or without the leading slash). */
export const CONTAINER_NAME_PATTERN = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function isValidContainerName(name: string): boolean {
  return CONTAINER_NAME_PATTERN.test(name);
}
