import type { ControlPlane } from '../api/methods.js';
import type { GraphRunner } from './graph-runtime.js';

/** Prometheus text exposition (LVA's metric names, lva-spec §4.5, plus ours). */
export function renderMetrics(control: ControlPlane, runners: GraphRunner[]): string {
  const lines: string[] = [];
  const c = control.counts();
  lines.push('# HELP lva_active_graph_instances Graph instances in state Active.');
  lines.push('# TYPE lva_active_graph_instances gauge');
  lines.push(`lva_active_graph_instances ${c.active}`);
  lines.push('# HELP lva_graph_topologies Stored graph topologies.', '# TYPE lva_graph_topologies gauge', `lva_graph_topologies ${c.topologies}`);
  lines.push('# HELP lva_graph_instances Stored graph instances.', '# TYPE lva_graph_instances gauge', `lva_graph_instances ${c.instances}`);
  lines.push('# HELP lva_data_dropped_total Items dropped on graph links.', '# TYPE lva_data_dropped_total counter');
  for (const r of runners) {
    const inst = esc(r.graph.instanceName);
    lines.push(`lva_data_dropped_total{graph_instance="${inst}",data_kind="frames"} ${r.dropped.frames}`);
    lines.push(`lva_data_dropped_total{graph_instance="${inst}",data_kind="media"} ${r.dropped.media}`);
  }
  lines.push('# HELP lva_link_queue_depth Items waiting on a graph link.', '# TYPE lva_link_queue_depth gauge');
  for (const r of runners) {
    for (const l of r.linkStats()) {
      lines.push(`lva_link_queue_depth{graph_instance="${esc(r.graph.instanceName)}",from="${esc(l.from)}",to="${esc(l.to)}"} ${l.depth}`);
    }
  }
  lines.push('# HELP lva_received_bytes_total Bytes received from RTSP sources.', '# TYPE lva_received_bytes_total counter');
  for (const r of runners) {
    for (const n of r.nodeStats()) {
      if (typeof n.stats.bytes === 'number') {
        lines.push(`lva_received_bytes_total{graph_instance="${esc(r.graph.instanceName)}",graph_node="${esc(n.node)}"} ${n.stats.bytes}`);
      }
    }
  }
  lines.push('# HELP lva_node_counter Per-node counters (frames, clips, reconnects, uploads, drops...).', '# TYPE lva_node_counter counter');
  for (const r of runners) {
    for (const n of r.nodeStats()) {
      for (const [k, v] of Object.entries(n.stats)) {
        if (typeof v !== 'number') continue;
        lines.push(`lva_node_counter{graph_instance="${esc(r.graph.instanceName)}",graph_node="${esc(n.node)}",counter="${esc(k)}"} ${v}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

function esc(s: string): string {
  return s.replace(/[\\"\n]/g, (m) => (m === '\n' ? '\\n' : `\\${m}`));
}
