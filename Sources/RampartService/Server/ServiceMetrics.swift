import Metrics
import Prometheus

/// The process's metrics registry, exported at `/metrics` in Prometheus text format.
///
/// swift-metrics has one global backend per process, so it is bootstrapped once, here,
/// however many service instances (tests) the process starts.
enum ServiceMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    static func bootstrap() { _ = registry }
}
