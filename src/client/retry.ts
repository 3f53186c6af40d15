import { ConveyorConnectionError } from './errors.js';

/**
 * Runs `run`, trying again after a failure to reach the server (a server restarting refuses
 * connections for a few seconds), waiting 0.5 s, 1 s, 2 s … in between. Any other error, and the last
 * connection error, is thrown.
 */
export async function retryOnConnectionError<T>(run: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof ConveyorConnectionError) || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
  }
}
