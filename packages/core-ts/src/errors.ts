// Errors of @bsx/core: each carries a stable `code` that a program can test.

export type BsxErrorCode =
  | 'BSX_DATA_NOT_FOUND'
  | 'BSX_DATA_CORRUPT'
  | 'BSX_INVALID_ARGUMENT'
  | 'BSX_NATIVE_LOAD'
  | 'BSX_DEVICE_UNAVAILABLE'
  | 'BSX_RUN_LOCKED'
  | 'BSX_RUN_CORRUPT'
  | 'BSX_CANCELLED'
  // from the native engine (err.code of its TypeError/RangeError/Error)
  | 'BSX_OUT_OF_MEMORY'
  | 'BSX_INVALID_ENV'
  | 'BSX_INVALID_STATE'
  | 'BSX_BUSY'
  | 'BSX_DISPOSED'
  /** The request needs more memory than the machine has (estimated before anything is allocated). */
  | 'BSX_TOO_LARGE'
  | 'BSX_NATIVE';

export class BsxError extends Error {
  readonly code: BsxErrorCode;
  /** The file the error is about, where there is one. */
  readonly path?: string;

  constructor(code: BsxErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'BsxError';
    this.code = code;
    if (options?.path !== undefined) this.path = options.path;
  }
}
