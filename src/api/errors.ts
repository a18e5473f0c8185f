/**
 * LVA's error model (lva-spec §1.2). Every failure that reaches a caller is an LvaError; only
 * `toODataBody` turns it into the OData `{error:{code,message,details}}` payload.
 */

export type TopLevelCode =
  | 'BadRequest'
  | 'InvalidResource'
  | 'InvalidVersion'
  | 'ConnectivityRequired'
  | 'NotFound'
  | 'Conflict'
  | 'InternalServerError'
  | 'ServerBusy'
  | 'NotImplemented';

export interface ErrorDetail {
  code: string;
  message: string;
  /** JSON-path-like pointer into the request with PascalCase segments, e.g. `$.Properties.Sources[0]`. */
  target?: string;
}

export interface ODataErrorBody {
  error: { code: string; message: string; details?: ErrorDetail[] };
}

export class LvaError extends Error {
  readonly status: number;
  readonly code: TopLevelCode;
  readonly details: ErrorDetail[];

  constructor(status: number, code: TopLevelCode, message: string, details: ErrorDetail[] = []) {
    super(message);
    this.name = 'LvaError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  toODataBody(): ODataErrorBody {
    const body: ODataErrorBody = { error: { code: this.code, message: this.message } };
    if (this.details.length > 0) body.error.details = this.details.map((d) => ({ ...d }));
    return body;
  }

  /** The first detail code, if any — handy in tests and logs. */
  get detailCode(): string | undefined {
    return this.details[0]?.code;
  }
}

/** 400 InvalidResource with one or more detail entries (schema or graph problems in a body). */
export function invalidResource(message: string, details: ErrorDetail[]): LvaError {
  return new LvaError(400, 'InvalidResource', message, details);
}

/** 400 InvalidResource / GraphValidationError: the shape of the graph is wrong. */
export function graphValidationError(message: string, target?: string): LvaError {
  return new LvaError(400, 'InvalidResource', message, [
    { code: 'GraphValidationError', message, ...(target ? { target } : {}) },
  ]);
}

/** 400 InvalidResource / ModuleValidationError: a property value or unsupported feature. */
export function moduleValidationError(message: string, target?: string): LvaError {
  return new LvaError(400, 'InvalidResource', message, [
    { code: 'ModuleValidationError', message, ...(target ? { target } : {}) },
  ]);
}

export function badRequest(message: string, detailCode?: string, target?: string): LvaError {
  return new LvaError(
    400,
    'BadRequest',
    message,
    detailCode ? [{ code: detailCode, message, ...(target ? { target } : {}) }] : [],
  );
}

export function notFound(message: string): LvaError {
  return new LvaError(404, 'NotFound', message);
}

export function conflict(detailCode: string, message: string): LvaError {
  return new LvaError(409, 'Conflict', message, [{ code: detailCode, message }]);
}

export function internalError(message = 'An internal error occurred.'): LvaError {
  return new LvaError(500, 'InternalServerError', message);
}

/** Wraps anything thrown into an LvaError; non-LvaErrors become a 500 without leaking internals. */
export function toLvaError(err: unknown): LvaError {
  if (err instanceof LvaError) return err;
  return internalError();
}
