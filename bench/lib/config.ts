// The Gatehouse config the bench generates when GATEHOUSE_CONFIG gives no template.

/**
 * Listen on `port`, route origin-form requests to the origin, allow CONNECT to the sink, and let the
 * SSRF guard reach loopback; every other key at its default (so every default-on phase runs).
 */
export const defaultConfigYaml = (host: string, port: number, originPort: number, sinkPort: number | undefined, extra: readonly string[] = []): string => {
  const allowed = sinkPort === undefined ? [443] : [443, sinkPort];
  return [
    `server: {host: ${host}, port: ${port}, connect: {allowed_ports: [${allowed.join(", ")}]}}`,
    `routing: {default_backend: "http://${host}:${originPort}", rules: []}`,
    "logging: {level: info, format: json}",
    // the bench's origin and sink are on loopback, which the SSRF guard refuses unless allowed
    `security: {allow_private_destinations: ["${host}/32"]}`,
    ...extra,
    "",
  ].join("\n");
};
