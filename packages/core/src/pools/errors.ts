/**
 * A configuration problem in one IPAddressPool, naming the pool and the field (a path such as
 * `spec.addresses[1]`). The controller keeps its last good configuration while any exists.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly pool: string;
  readonly namespace: string;
  readonly field: string;
  constructor(pool: string, namespace: string, field: string, message: string) {
    super(message);
    this.pool = pool;
    this.namespace = namespace;
    this.field = field;
  }
  /** Pools this error concerns (an overlap concerns two). */
  get pools(): string[] {
    return [this.pool];
  }
}

/** A field with the wrong type or a value out of range (autoAssign, priority, namespaces…). */
export class InvalidPoolFieldError extends ConfigError {
  override name = "InvalidPoolFieldError";
  constructor(pool: string, namespace: string, field: string, reason: string) {
    super(pool, namespace, field, `pool ${JSON.stringify(pool)} ${field}: ${reason}`);
  }
}

/** An entry of spec.addresses that is neither a CIDR nor an `a-b` range. */
export class InvalidAddressError extends ConfigError {
  override name = "InvalidAddressError";
  readonly input: string;
  constructor(pool: string, namespace: string, field: string, input: string, reason: string) {
    super(pool, namespace, field, `pool ${JSON.stringify(pool)} ${field} ${JSON.stringify(input)}: ${reason}`);
    this.input = input;
  }
}

/** Two address entries, in one pool or two, that share at least one address. */
export class AddressOverlapError extends ConfigError {
  override name = "AddressOverlapError";
  readonly input: string;
  readonly otherPool: string;
  readonly otherField: string;
  readonly otherInput: string;
  constructor(
    pool: { name: string; namespace: string; field: string; input: string },
    other: { name: string; field: string; input: string },
  ) {
    super(
      pool.name,
      pool.namespace,
      pool.field,
      `pool ${JSON.stringify(pool.name)} ${pool.field} ${JSON.stringify(pool.input)} overlaps pool ${JSON.stringify(other.name)} ${other.field} ${JSON.stringify(other.input)}`,
    );
    this.input = pool.input;
    this.otherPool = other.name;
    this.otherField = other.field;
    this.otherInput = other.input;
  }
  override get pools(): string[] {
    return this.otherPool === this.pool ? [this.pool] : [this.pool, this.otherPool];
  }
}

/** A label selector in serviceAllocation that Kubernetes would refuse. */
export class InvalidSelectorError extends ConfigError {
  override name = "InvalidSelectorError";
  constructor(pool: string, namespace: string, field: string, reason: string) {
    super(pool, namespace, field, `pool ${JSON.stringify(pool)} ${field}: ${reason}`);
  }
}

/** Two pools with one name (possible only across namespaces, in `bollard explain`). */
export class DuplicatePoolError extends ConfigError {
  override name = "DuplicatePoolError";
  readonly otherNamespace: string;
  constructor(pool: string, namespace: string, otherNamespace: string) {
    super(
      pool,
      namespace,
      "metadata.name",
      `pool ${JSON.stringify(pool)} metadata.name: defined in namespace ${JSON.stringify(otherNamespace)} and again in ${JSON.stringify(namespace)}; pools are referred to by name alone`,
    );
    this.otherNamespace = otherNamespace;
  }
}
