// What prom-client's process CPU metric gets for `require("@opentelemetry/api")` (./prom-client-slim.ts): it reads
// the API only for exemplars, which Bollard never turns on, so the real module (51 modules, ~9 MiB resident) is
// loaded on the first use rather than in every process.
let api;
const real = () => {
  api ??= require("@opentelemetry/api");
  return api;
};
module.exports = {
  get trace() {
    return real().trace;
  },
  get context() {
    return real().context;
  },
};
