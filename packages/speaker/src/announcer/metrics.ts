import { Counter, Gauge, type Registry } from "prom-client";

export interface AnnouncerMetrics {
  requestsReceived: Counter<"family" | "interface">;
  responsesSent: Counter<"family" | "interface" | "ip">;
  gratuitousSent: Counter<"family" | "interface" | "ip">;
  sendErrors: Counter<"interface">;
  malformedFrames: Counter<"family" | "reason">;
}

export function createAnnouncerMetrics(registry: Registry): AnnouncerMetrics {
  const registers = [registry];
  return {
    requestsReceived: new Counter({
      name: "bollard_speaker_layer2_requests_received_total",
      help: "ARP requests and neighbor solicitations received (family 4 = ARP, 6 = NDP)",
      labelNames: ["family", "interface"],
      registers,
    }),
    responsesSent: new Counter({
      name: "bollard_speaker_layer2_responses_sent_total",
      help: "ARP replies and neighbor advertisements sent in answer to a request",
      labelNames: ["family", "interface", "ip"],
      registers,
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
    }),
    malformedFrames: new Counter({
      name: "bollard_speaker_layer2_malformed_frames_total",
      help: "Received frames dropped as malformed",
      labelNames: ["family", "reason"],
      registers,
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
