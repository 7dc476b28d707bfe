package addons

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"sigs.k8s.io/yaml"
)

// Test values of the maintenance jobs' image, pinned by digest.
const (
	testMaintenanceRepository = "mirror.example.com/bootctl/boot"
	testMaintenanceDigest     = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// requiredValues are the values the chart cannot render without, and the
// maintenance jobs' image (pinned by digest), without which the chart
// installs neither maintenance CronJob.
func requiredValues() map[string]any {
	return map[string]any{
		"host":        "registry.example.com",
		"credentials": map[string]any{"existingSecret": "registry-credentials"},
		"maintenance": map[string]any{"image": map[string]any{"repository": testMaintenanceRepository, "digest": testMaintenanceDigest}},
	}
}

// withValues returns requiredValues overlaid with more (one level of merge for maps).
func withValues(more map[string]any) map[string]any {
	v := requiredValues()
	for k, val := range more {
		if m, ok := val.(map[string]any); ok {
			if old, ok := v[k].(map[string]any); ok {
				merged := maps.Clone(old)
				maps.Copy(merged, m)
				v[k] = merged
				continue
			}
		}
		v[k] = val
	}
	return v
}

func s3Values() map[string]any {
	return withValues(map[string]any{
		"storage": map[string]any{
			"type": "s3",
			"s3": map[string]any{
				"bucket":         "images",
				"region":         "eu-west-1",
				"regionEndpoint": "https://minio.example.com",
				"forcePathStyle": true,
				"existingSecret": "registry-s3",
			},
			"redirect": map[string]any{"disable": true},
		},
	})
}

// parseConfig parses a rendered config.yml with distribution's own parser. The
// environment must not carry REGISTRY_* overrides unless the test sets them.
func parseConfig(t *testing.T, raw []byte) *configuration.Configuration {
	t.Helper()
	cfg, err := configuration.Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("distribution rejects the rendered config: %v\n%s", err, raw)
	}
	return cfg
}

// v3RedisKeys are the redis keys distribution v3 reads (configuration.RedisOptions).
var v3RedisKeys = []string{"addrs", "db", "dialtimeout", "readtimeout", "writetimeout",
	"maxretries", "poolsize", "minidleconns", "maxidleconns", "pooltimeout", "connmaxidletime"}

func TestRenderRegistryConfigDefault(t *testing.T) {
	raw, err := RenderRegistryConfig(requiredValues())
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseConfig(t, raw)

	if cfg.Version.Major() != 0 || cfg.Version.Minor() != 1 {
		t.Errorf("version = %s, want 0.1", cfg.Version)
	}
	if got := cfg.Storage.Type(); got != "filesystem" {
		t.Errorf("storage type = %q, want filesystem", got)
	}
	if got := cfg.Storage.Parameters()["rootdirectory"]; got != "/var/lib/registry" {
		t.Errorf("filesystem rootdirectory = %v", got)
	}
	if got := cfg.Storage["delete"]["enabled"]; got != true {
		t.Errorf("storage.delete.enabled = %v, want true", got)
	}
	if got := cfg.Storage["cache"]["blobdescriptor"]; got != "redis" {
		t.Errorf("storage.cache.blobdescriptor = %v, want redis", got)
	}
	purge, ok := cfg.Storage["maintenance"]["uploadpurging"].(map[any]any)
	if !ok || purge["enabled"] != true || purge["age"] != "168h" || purge["interval"] != "24h" || purge["dryrun"] != false {
		t.Errorf("storage.maintenance.uploadpurging = %#v", cfg.Storage["maintenance"]["uploadpurging"])
	}
	if _, ok := cfg.Storage["maintenance"]["readonly"]; ok {
		t.Error("config.yml sets readonly; it belongs to the Deployment's env so gc can switch it")
	}

	if got := cfg.Redis.Options.Addrs; !slices.Equal(got, []string{"registry-redis:6379"}) {
		t.Errorf("redis.addrs = %v", got)
	}
	o := cfg.Redis.Options
	// No retries and short timeouts: a dead Redis costs a pull milliseconds
	// (TestRegistryRedisFallback measures it).
	if o.DB != 0 || o.PoolSize != 32 || o.MinIdleConns != 16 || o.MaxIdleConns != 32 || o.MaxRetries != -1 ||
		o.DialTimeout != 100*time.Millisecond || o.ReadTimeout != 100*time.Millisecond || o.WriteTimeout != 100*time.Millisecond ||
		o.PoolTimeout != 100*time.Millisecond || o.ConnMaxIdleTime != 5*time.Minute {
		t.Errorf("redis options = %+v", o)
	}
	if o.Password != "" {
		t.Error("config.yml carries a Redis password; it must come from REGISTRY_REDIS_PASSWORD")
	}

	// Only v3 keys: v2's addr/pool/idletimeout are silently ignored by v3, which then panics.
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	redis, _ := doc["redis"].(map[string]any)
	for _, k := range slices.Sorted(maps.Keys(redis)) {
		if !slices.Contains(v3RedisKeys, k) {
			t.Errorf("redis.%s is not a distribution v3 key", k)
		}
	}
	for _, v2 := range []string{"addr", "pool", "idletimeout", "password"} {
		if _, ok := redis[v2]; ok {
			t.Errorf("redis.%s present", v2)
		}
	}

	// distribution v3.1 ignores relativeurls when http.host is set: the
	// default (relative URLs) leaves the host out.
	if cfg.HTTP.Addr != ":5000" || cfg.HTTP.Host != "" {
		t.Errorf("http addr/host = %q %q", cfg.HTTP.Addr, cfg.HTTP.Host)
	}
	if !cfg.HTTP.RelativeURLs {
		t.Error("http.relativeurls is off: pushes through the Service would be sent to the public host")
	}
	if cfg.HTTP.Secret != "" {
		t.Error("config.yml carries http.secret; it must come from REGISTRY_HTTP_SECRET")
	}
	if cfg.HTTP.Debug.Addr != "127.0.0.1:5001" || !cfg.HTTP.Debug.Prometheus.Enabled || cfg.HTTP.Debug.Prometheus.Path != "/metrics" {
		t.Errorf("http.debug = %+v", cfg.HTTP.Debug)
	}
	if cfg.HTTP.DrainTimeout != 30*time.Second {
		t.Errorf("http.draintimeout = %v", cfg.HTTP.DrainTimeout)
	}
	if !cfg.Health.StorageDriver.Enabled || cfg.Health.StorageDriver.Interval != 10*time.Second || cfg.Health.StorageDriver.Threshold != 3 {
		t.Errorf("health.storagedriver = %+v", cfg.Health.StorageDriver)
	}
	if cfg.Auth.Type() != "htpasswd" || cfg.Auth.Parameters()["path"] != "/etc/registry/auth/htpasswd" || cfg.Auth.Parameters()["realm"] != "boot-registry" {
		t.Errorf("auth = %#v", cfg.Auth)
	}
}

func TestRenderRegistryConfigS3(t *testing.T) {
	raw, err := RenderRegistryConfig(s3Values())
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseConfig(t, raw)
	if got := cfg.Storage.Type(); got != "s3" {
		t.Fatalf("storage type = %q, want s3", got)
	}
	p := cfg.Storage.Parameters()
	want := map[string]any{"bucket": "images", "region": "eu-west-1", "regionendpoint": "https://minio.example.com",
		"forcepathstyle": true, "encrypt": false, "secure": true}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("storage.s3.%s = %v, want %v", k, p[k], v)
		}
	}
	for _, k := range []string{"accesskey", "secretkey", "rootdirectory"} {
		if _, ok := p[k]; ok {
			t.Errorf("storage.s3.%s is set; keys come from the AWS environment", k)
		}
	}
	if got := cfg.Storage["redirect"]["disable"]; got != true {
		t.Errorf("storage.redirect.disable = %v, want true", got)
	}
	if got := cfg.Storage["delete"]["enabled"]; got != true {
		t.Errorf("storage.delete.enabled = %v", got)
	}
}

func TestRenderRegistryConfigRedis(t *testing.T) {
	t.Run("external", func(t *testing.T) {
		raw, err := RenderRegistryConfig(withValues(map[string]any{"redis": map[string]any{"externalAddress": "127.0.0.1:16379", "db": 3}}))
		if err != nil {
			t.Fatal(err)
		}
		cfg := parseConfig(t, raw)
		if !slices.Equal(cfg.Redis.Options.Addrs, []string{"127.0.0.1:16379"}) || cfg.Redis.Options.DB != 3 {
			t.Errorf("redis = %+v", cfg.Redis.Options)
		}
		if cfg.Storage["cache"]["blobdescriptor"] != "redis" {
			t.Errorf("cache = %v", cfg.Storage["cache"])
		}
	})
	for _, cache := range []string{"none", "inmemory"} {
		t.Run(cache, func(t *testing.T) {
			raw, err := RenderRegistryConfig(withValues(map[string]any{"cache": cache}))
			if err != nil {
				t.Fatal(err)
			}
			cfg := parseConfig(t, raw)
			if len(cfg.Redis.Options.Addrs) != 0 {
				t.Errorf("redis.addrs = %v with cache %s", cfg.Redis.Options.Addrs, cache)
			}
			got, ok := cfg.Storage["cache"]
			if want := cache == "inmemory"; ok != want || ok && got["blobdescriptor"] != "inmemory" {
				t.Errorf("storage.cache = %v with cache %s", got, cache)
			}
		})
	}
	t.Run("inmemory with replicas", func(t *testing.T) {
		v := s3Values()
		v["cache"], v["replicaCount"] = "inmemory", 2
		if _, err := RenderRegistry(RenderOptions{Values: v}); err == nil || !strings.Contains(err.Error(), "replicaCount > 1 needs cache redis") {
			t.Errorf("inmemory with 2 replicas: %v", err)
		}
	})
}
