import { Counter, Gauge, type Registry } from "prom-client";

export interface AnnouncerMetrics {
  requestsReceived: Counter<"family" | "interface">;
  responsesSent: Counter<"family" | "interface" | "ip">;
  gratuitousSent: Counter<"family" | "interface" | "ip">;
  sendErrors: Counter<"interface">;
  malformedFrames: Counter<"family" | "reason">;
  /** Run before a scrape reads the counters above: they bring in what the liveness thread counted. */
  collectors: Set<() => void>;
}

export function createAnnouncerMetrics(registry: Registry): AnnouncerMetrics {
  const registers = [registry];
  const collectors = new Set<() => void>();
  const collect = () => {
    for (const collector of collectors) collector();
  };
  return {
    collectors,
    requestsReceived: new Counter({
      name: "bollard_speaker_layer2_requests_received_total",
      help: "ARP requests and neighbor solicitations received (family 4 = ARP, 6 = NDP)",
      labelNames: ["family", "interface"],
      registers,
      collect,
    }),
    responsesSent: new Counter({
      name: "bollard_speaker_layer2_responses_sent_total",
      help: "ARP replies and neighbor advertisements sent in answer to a request",
      labelNames: ["family", "interface", "ip"],
      registers,
      collect,
    }),
    gratuitousSent: new Counter({
      name: "bollard_speaker_layer2_gratuitous_sent_total",
      help: "Gratuitous ARP and unsolicited neighbor advertisements sent",
      labelNames: ["family", "interface", "ip"],
      registers,
    }),
    sendErrors: new Counter({
      name: "bollard_speaker_layer2_send_errors_total",
      help: "Frames the kernel refused to send",
      labelNames: ["interface"],
      registers,
      collect,
    }),
    malformedFrames: new Counter({
      name: "bollard_speaker_layer2_malformed_frames_total",
      help: "Received frames dropped as malformed",
      labelNames: ["family", "reason"],
      registers,
      collect,
    }),
  };
}

export function createAnnouncedGauge(registry: Registry): Gauge<"service" | "ip" | "node"> {
  return new Gauge({
    name: "bollard_speaker_announced",
    help: "1 for each address this node announces, by service, ip and node",
    labelNames: ["service", "ip", "node"],
    registers: [registry],
  });
}
