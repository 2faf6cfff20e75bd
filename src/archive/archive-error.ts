/** An archive file, manifest or export could not be written, read or verified (code E_ARCHIVE). */
import { CollectorError } from '../errors.ts';

export class ArchiveError extends CollectorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_ARCHIVE', message, options);
  }
}
