// @ts-check
// The API key lives in localStorage so that it survives reloads; it is sent as a bearer token.

const STORAGE_KEY = 'conveyor.apiKey';

export function readApiKey() {
  try {
    return localStorage.getItem(STORAGE_KEY) ?? '';
  } catch {
    // Storage can be switched off (privacy settings); the dashboard still works without a key.
    return '';
  }
}

/** @param {string} value */
export function saveApiKey(value) {
  const key = value.trim();
  try {
    if (key) localStorage.setItem(STORAGE_KEY, key);
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    // See readApiKey: without storage the key simply does not persist.
  }
  return key;
}

/**
 * Header value for fetch and graphql-ws; undefined when no key is set.
 * @param {string} key
 */
export function authorizationFor(key) {
  return key ? `Bearer ${key}` : undefined;
}
