#include "otel/settings.hpp"

#include <gtest/gtest.h>

#include <map>

namespace iron::otel {
namespace {

using env_map = std::map<std::string, std::string>;

result<std::optional<settings>> from(const env_map& env) {
    return settings_from_env([&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
    });
}

settings parsed(const env_map& env) {
    auto s = from(env);
    EXPECT_TRUE(s) << (s ? "" : s.message());
    EXPECT_TRUE(s && *s);
    return s && *s ? **s : settings{};
}

TEST(OtelSettings, OffWithoutAnEndpoint) {
    auto s = from({{"OTEL_SERVICE_NAME", "x"}, {"OTEL_EXPORTER_OTLP_HEADERS", "a=b"}});
    ASSERT_TRUE(s);
    EXPECT_FALSE(*s);
    auto empty = from({{"OTEL_EXPORTER_OTLP_ENDPOINT", ""}});
    ASSERT_TRUE(empty);
    EXPECT_FALSE(*empty);
}

TEST(OtelSettings, DefaultsFollowTheSpec) {
    settings s = parsed({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"}});
    EXPECT_EQ(s.proto, protocol::http_protobuf);
    EXPECT_FALSE(s.where.tls);
    EXPECT_EQ(s.where.host, "collector");
    EXPECT_EQ(s.where.port, 4318);
    EXPECT_EQ(s.where.target, "/v1/logs");
    EXPECT_EQ(s.where.text, "http://collector:4318/v1/logs");
    EXPECT_EQ(s.timeout, std::chrono::milliseconds(10000));
    EXPECT_FALSE(s.gzip);
    EXPECT_EQ(s.max_queue, 2048u);
    EXPECT_EQ(s.max_batch, 512u);
    EXPECT_EQ(s.schedule_delay, std::chrono::milliseconds(1000));
    EXPECT_EQ(s.export_timeout, std::chrono::milliseconds(30000));
    ASSERT_EQ(s.resource.size(), 1u);
    EXPECT_EQ(s.resource[0], (std::pair<std::string, std::string>{"service.name", "iron-proxy"}));
}

TEST(OtelSettings, GenericEndpointGetsTheSignalPathLogsEndpointIsKept) {
    EXPECT_EQ(parsed({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c.example/base/"}}).where.target, "/base/v1/logs");
    EXPECT_EQ(parsed({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c.example/base"}}).where.target, "/base/v1/logs");
    settings logs = parsed({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"},
                            {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "https://c.example/custom/path?x=1"}});
    EXPECT_TRUE(logs.where.tls);
    EXPECT_EQ(logs.where.host, "c.example");
    EXPECT_EQ(logs.where.port, 443);
    EXPECT_EQ(logs.where.target, "/custom/path?x=1");
    EXPECT_EQ(parsed({{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://[::1]:4318"}}).where.authority(), "[::1]:4318");
}

TEST(OtelSettings, GrpcUsesTheServiceMethodPath) {
    settings s = parsed({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317/ignored"},
                         {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}});
    EXPECT_EQ(s.proto, protocol::grpc);
    EXPECT_EQ(s.where.target, "/opentelemetry.proto.collector.logs.v1.LogsService/Export");
    EXPECT_EQ(parsed({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
                      {"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc"}})
                  .proto,
              protocol::grpc);
}

TEST(OtelSettings, UnknownProtocolIsAnErrorNamingIt) {
    auto s = from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}});
    ASSERT_FALSE(s);
    EXPECT_NE(s.message().find("OTEL_EXPORTER_OTLP_PROTOCOL"), std::string::npos);
    EXPECT_NE(s.message().find("\"http/json\""), std::string::npos);
    EXPECT_FALSE(from({{"OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"}}));  // even with export off
}

TEST(OtelSettings, BadEndpoints) {
    for (const char* url : {"collector:4318", "ftp://x/", "http://", "http://x:99999", "http://user:pw@x/",
                            "http://[::1/"}) {
        auto s = from({{"OTEL_EXPORTER_OTLP_ENDPOINT", url}});
        EXPECT_FALSE(s) << url;
        if (!s) {
            EXPECT_NE(s.message().find("OTEL_EXPORTER_OTLP_ENDPOINT"), std::string::npos);
            EXPECT_EQ(s.message().find("pw"), std::string::npos);
        }
    }
}

TEST(OtelSettings, HeadersPercentDecodedLogsTwinWinsAndValuesNeverInErrors) {
    settings s = parsed({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"},
                         {"OTEL_EXPORTER_OTLP_HEADERS", " api-key = s3cr%3Dt ,x-b=2"}});
    ASSERT_EQ(s.headers.size(), 2u);
    EXPECT_EQ(s.headers[0], (std::pair<std::string, std::string>{"api-key", "s3cr=t"}));
    EXPECT_EQ(s.headers[1], (std::pair<std::string, std::string>{"x-b", "2"}));
    settings twin = parsed({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"}, {"OTEL_EXPORTER_OTLP_HEADERS", "a=1"},
                            {"OTEL_EXPORTER_OTLP_LOGS_HEADERS", "b=2"}});
    ASSERT_EQ(twin.headers.size(), 1u);
    EXPECT_EQ(twin.headers[0].first, "b");
    auto bad = from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"}, {"OTEL_EXPORTER_OTLP_HEADERS", "Bearer-sekrit"}});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.message().find("OTEL_EXPORTER_OTLP_HEADERS"), std::string::npos);
    EXPECT_EQ(bad.message().find("sekrit"), std::string::npos);
}

TEST(OtelSettings, ResourceAndServiceName) {
    settings s = parsed({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"},
                         {"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,service.name=from-attrs,team=a%20b"}});
    ASSERT_EQ(s.resource.size(), 3u);
    EXPECT_EQ(s.resource[0].second, "from-attrs");
    EXPECT_EQ(s.resource[1], (std::pair<std::string, std::string>{"deployment.environment", "prod"}));
    EXPECT_EQ(s.resource[2], (std::pair<std::string, std::string>{"team", "a b"}));
    settings named = parsed({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"}, {"OTEL_SERVICE_NAME", "egress"},
                             {"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"}});
    ASSERT_EQ(named.resource.size(), 1u);
    EXPECT_EQ(named.resource[0].second, "egress");
}

TEST(OtelSettings, TimeoutCompressionTlsAndBatching) {
    settings s = parsed({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://x"},
                         {"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"},
                         {"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
                         {"OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem"},
                         {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c.pem"},
                         {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem"},
                         {"OTEL_BLRP_MAX_QUEUE_SIZE", "100"},
                         {"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "500"},
                         {"OTEL_BLRP_SCHEDULE_DELAY", "50"},
                         {"OTEL_BLRP_EXPORT_TIMEOUT", "3000"}});
    EXPECT_EQ(s.timeout, std::chrono::milliseconds(2500));
    EXPECT_TRUE(s.gzip);
    EXPECT_EQ(s.ca_file, "/ca.pem");
    EXPECT_EQ(s.client_cert_file, "/c.pem");
    EXPECT_EQ(s.client_key_file, "/k.pem");
    EXPECT_EQ(s.max_queue, 100u);
    EXPECT_EQ(s.max_batch, 100u);  // never larger than the queue
    EXPECT_EQ(s.schedule_delay, std::chrono::milliseconds(50));
    EXPECT_EQ(s.export_timeout, std::chrono::milliseconds(3000));
    EXPECT_FALSE(from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"}, {"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"}}));
    EXPECT_FALSE(from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"}, {"OTEL_EXPORTER_OTLP_TIMEOUT", "10s"}}));
    EXPECT_FALSE(from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"}, {"OTEL_BLRP_MAX_QUEUE_SIZE", "0"}}));
    EXPECT_FALSE(from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"}, {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem"}}));
}

}  // namespace
}  // namespace iron::otel
