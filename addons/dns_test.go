package addons

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/bootctl/boot/internal/route53test"
	"github.com/bootctl/boot/internal/run"
)

const ownerTXT = `"heritage=boot,cluster=lab"`

// newTestRoute53 starts the fake Route53 (no zones yet) and
// returns it with a client from NewRoute53Client pointed at it: at most 4
// attempts per call, backoff capped at 5ms.
func newTestRoute53(t *testing.T) (*route53test.Server, *route53.Client) {
	t.Helper()
	route53test.SetCredentialsEnv(t, route53test.AccessKey, route53test.SecretKey)
	f := route53test.Start(t)
	c, err := NewRoute53Client(context.Background(), Route53Config{Endpoint: f.URL(), MaxAttempts: 4, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// testDNS is the registry record of cluster lab; its progress lines go to
// *lines.
func testDNS(c Route53API, lines *[]string) DNS {
	return DNS{Client: c, Zone: "example.com", Host: "registry.example.com", TTL: 300, Owner: "lab",
		Addresses: []string{"198.51.100.12", "198.51.100.2", "198.51.100.12"},
		Report:    func(e run.Event) { *lines = append(*lines, e.Message) }, Wait: 10 * time.Second, Poll: time.Millisecond}
}

func wantBatches(t *testing.T, f *route53test.Server, want ...[]string) {
	t.Helper()
	got := f.Batches()
	if len(got) != len(want) {
		t.Fatalf("received %d change batches, want %d: %+v", len(got), len(want), got)
	}
	for i, b := range got {
		if !slices.Equal(b.Changes, want[i]) {
			t.Errorf("batch %d:\n got  %q\n want %q", i, b.Changes, want[i])
		}
		if !b.Accepted {
			t.Errorf("batch %d was rejected by the fake Route53", i)
		}
	}
}

func TestDNSEnsureUpsertsOwnedRecordAndWaitsForInsync(t *testing.T) {
	f, c := newTestRoute53(t)
	zone := f.AddZone("ZPUB", "example.com", false)
	f.SetPendingPolls(3)
	var lines []string
	d := testDNS(c, &lines)

	changed, err := d.Ensure(context.Background())
	if err != nil || !changed {
		t.Fatalf("Ensure = %v, %v; want true, nil", changed, err)
	}
	create := []string{
		"UPSERT registry.example.com. A 300 198.51.100.2 198.51.100.12",
		"UPSERT registry.example.com. TXT 300 " + ownerTXT,
	}
	wantBatches(t, f, create)
	if b := f.Batches()[0]; b.Zone != "ZPUB" || b.Comment != "boot: registry host of cluster lab" {
		t.Errorf("batch zone %q comment %q", b.Zone, b.Comment)
	}
	if n := f.Calls("GetChange"); n != 4 {
		t.Errorf("GetChange called %d times, want 4 (3 PENDING, then INSYNC)", n)
	}
	log := strings.Join(lines, "\n")
	for _, want := range []string{"hosted zone example.com. is /hostedzone/ZPUB (public)", "change /change/C000001FAKE is PENDING after", "change /change/C000001FAKE is INSYNC after"} {
		if !strings.Contains(log, want) {
			t.Errorf("progress lacks %q:\n%s", want, log)
		}
	}
	if n := strings.Count(log, "is PENDING after"); n != 3 {
		t.Errorf("%d PENDING progress lines, want 3:\n%s", n, log)
	}
	wantSets := []string{"example.com. NS 172800 ns-1.awsdns-00.com. ns-2.awsdns-00.net.",
		"example.com. SOA 900 ns-1.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400",
		"registry.example.com. A 300 198.51.100.2 198.51.100.12", "registry.example.com. TXT 300 " + ownerTXT}
	if got := f.RecordSets(zone); !slices.Equal(got, wantSets) {
		t.Errorf("zone records:\n got  %q\n want %q", got, wantSets)
	}

	// A re-run with the same addresses, in another order, changes nothing.
	lines = nil
	d.Addresses = []string{"198.51.100.2", "198.51.100.12"}
	changed, err = d.Ensure(context.Background())
	if err != nil || changed {
		t.Fatalf("re-run: Ensure = %v, %v; want false, nil", changed, err)
	}
	if n := f.Calls("ChangeResourceRecordSets"); n != 1 {
		t.Errorf("re-run: ChangeResourceRecordSets called %d times in all, want 1", n)
	}
	if !slices.ContainsFunc(lines, func(s string) bool { return strings.Contains(s, "198.51.100.2,198.51.100.12 TTL 300 is up to date") }) {
		t.Errorf("re-run progress: %q", lines)
	}

	// New addresses, then a new TTL: one UPSERT batch each.
	d.Addresses = []string{"198.51.100.7"}
	if changed, err := d.Ensure(context.Background()); err != nil || !changed {
		t.Fatalf("new address: Ensure = %v, %v", changed, err)
	}
	d.TTL = 60
	if changed, err := d.Ensure(context.Background()); err != nil || !changed {
		t.Fatalf("new TTL: Ensure = %v, %v", changed, err)
	}
	wantBatches(t, f, create,
		[]string{"UPSERT registry.example.com. A 300 198.51.100.7", "UPSERT registry.example.com. TXT 300 " + ownerTXT},
		[]string{"UPSERT registry.example.com. A 60 198.51.100.7", "UPSERT registry.example.com. TXT 60 " + ownerTXT})
}

func TestDNSZoneSelection(t *testing.T) {
	type zone struct {
		id, name string
		private  bool
	}
	similar := []zone{{"ZAU", "example.com.au", false}, {"ZAN", "anexample.com", false}, {"ZSUB", "sub.example.com", false}, {"ZCOM", "com", false}}
	for _, tc := range []struct {
		name     string
		zones    []zone
		zoneName string
		pageSize int
		want     string // zone ID of the batch, or an error substring
		wantErr  bool
		maxLists int // at most this many ListHostedZonesByName calls (0: any)
	}{
		{name: "exact name among similar ones", zones: append(slices.Clone(similar), zone{"ZPUB", "example.com", false}), zoneName: "example.com", want: "ZPUB"},
		{name: "trailing dot and case", zones: append(slices.Clone(similar), zone{"ZPUB", "example.com", false}), zoneName: "Example.COM.", want: "ZPUB"},
		{name: "public preferred over private", zones: append(slices.Clone(similar), zone{"ZA0PRIV", "example.com", true}, zone{"ZPUB", "example.com", false}), zoneName: "example.com", want: "ZPUB"},
		{name: "public found on a later page", zones: append(slices.Clone(similar), zone{"ZA0PRIV", "example.com", true}, zone{"ZPUB", "example.com", false}, zone{"ZX", "x.example.com", false}, zone{"ZY", "y.example.com", false}),
			zoneName: "example.com", pageSize: 1, want: "ZPUB", maxLists: 3},
		{name: "a private zone alone is used", zones: append(slices.Clone(similar), zone{"ZPRIV", "example.com", true}), zoneName: "example.com", want: "ZPRIV"},
		{name: "none with that name", zones: similar, zoneName: "example.com", wantErr: true,
			want: "no hosted zone named example.com. in this AWS account"},
		{name: "none at all", zoneName: "example.com", wantErr: true, want: "no hosted zone named example.com."},
		{name: "two public zones", zones: []zone{{"ZP1", "example.com", false}, {"ZP2", "example.com", false}}, zoneName: "example.com", wantErr: true,
			want: "2 public hosted zones are named example.com. (/hostedzone/ZP1, /hostedzone/ZP2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newTestRoute53(t)
			if tc.pageSize > 0 {
				f.SetPageSize(tc.pageSize)
			}
			for _, z := range tc.zones {
				f.AddZone(z.id, z.name, z.private)
			}
			var lines []string
			d := testDNS(c, &lines)
			d.Zone = tc.zoneName
			_, err := d.Ensure(context.Background())
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Ensure error = %v, want one with %q", err, tc.want)
				}
				if n := f.Calls("ChangeResourceRecordSets"); n != 0 {
					t.Errorf("ChangeResourceRecordSets called %d times", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b := f.Batches(); len(b) != 1 || b[0].Zone != tc.want {
				t.Errorf("change batches %+v, want one to zone %s", b, tc.want)
			}
			if n := f.Calls("ListHostedZonesByName"); tc.maxLists > 0 && n > tc.maxLists {
				t.Errorf("ListHostedZonesByName called %d times, want at most %d (the listing past the name must stop)", n, tc.maxLists)
			}
		})
	}
}

func TestDNSWaitIsBounded(t *testing.T) {
	f, c := newTestRoute53(t)
	f.AddZone("ZPUB", "example.com", false)
	f.SetPendingPolls(1 << 30)
	var lines []string
	d := testDNS(c, &lines)
	d.Wait, d.Poll = 300*time.Millisecond, 10*time.Millisecond
	start := time.Now()
	changed, err := d.Ensure(context.Background())
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Ensure took %s with a 300ms wait", elapsed)
	}
	if !changed || err == nil || !strings.Contains(err.Error(), "change /change/C000001FAKE is still PENDING after 300ms (the longest boot waits)") {
		t.Fatalf("Ensure = %v, %v; want true and a clear timeout error", changed, err)
	}
	// Polls at 10, 30, 70, 150, 230ms (doubling up to 80ms): at most 5,
	// far fewer than the 30 a fixed 10ms interval would make.
	polls := f.Calls("GetChange")
	if polls < 1 || polls > 5 {
		t.Errorf("GetChange called %d times in 300ms, want 1-5 (polls back off)", polls)
	}
	// Each answered poll shows a line; the deadline may cut the last one short.
	if n := len(slices.DeleteFunc(slices.Clone(lines), func(s string) bool { return !strings.Contains(s, "is PENDING after") })); n < 1 || n > polls {
		t.Errorf("%d PENDING progress lines for %d polls: %q", n, polls, lines)
	}

	// A cancelled context ends the wait with the context's error.
	f2, c2 := newTestRoute53(t)
	f2.AddZone("ZPUB", "example.com", false)
	f2.SetPendingPolls(1 << 30)
	d = testDNS(c2, &lines)
	ctx, cancel := context.WithCancel(context.Background())
	d.Report = func(e run.Event) {
		if strings.Contains(e.Message, "PENDING") {
			cancel()
		}
	}
	if _, err := d.Ensure(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
}

func TestDNSRetriesThrottling(t *testing.T) {
	f, c := newTestRoute53(t)
	f.AddZone("ZPUB", "example.com", false)
	f.SetPendingPolls(1)
	f.Fail("ListHostedZonesByName", "Throttling", 1)
	f.Fail("ListResourceRecordSets", "PriorRequestNotComplete", 3)
	f.Fail("ChangeResourceRecordSets", "Throttling", 1)
	f.Fail("ChangeResourceRecordSets", "PriorRequestNotComplete", 2)
	f.Fail("GetChange", "Throttling", 2)
	var lines []string
	changed, err := testDNS(c, &lines).Ensure(context.Background())
	if err != nil || !changed {
		t.Fatalf("Ensure = %v, %v; want success after retries", changed, err)
	}
	for op, want := range map[string]int{"ListHostedZonesByName": 2, "ListResourceRecordSets": 4, "ChangeResourceRecordSets": 4, "GetChange": 4} {
		if n := f.Calls(op); n != want {
			t.Errorf("%s called %d times, want %d", op, n, want)
		}
	}
	wantBatches(t, f, []string{
		"UPSERT registry.example.com. A 300 198.51.100.2 198.51.100.12",
		"UPSERT registry.example.com. TXT 300 " + ownerTXT,
	})
}

func TestDNSRetryGivesUp(t *testing.T) {
	for _, code := range []string{"Throttling", "PriorRequestNotComplete"} {
		t.Run(code, func(t *testing.T) {
			f, c := newTestRoute53(t)
			f.AddZone("ZPUB", "example.com", false)
			f.Fail("ChangeResourceRecordSets", code, 100)
			var lines []string
			changed, err := testDNS(c, &lines).Ensure(context.Background())
			if changed || err == nil {
				t.Fatalf("Ensure = %v, %v; want an error", changed, err)
			}
			for _, want := range []string{"route53: UPSERT registry.example.com. A", "exceeded maximum number of attempts, 4", code} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if n := f.Calls("ChangeResourceRecordSets"); n != 4 {
				t.Errorf("ChangeResourceRecordSets called %d times, want 4 (MaxAttempts)", n)
			}
			if len(f.Batches()) != 0 {
				t.Errorf("a batch got through: %+v", f.Batches())
			}
		})
	}
	t.Run("not retryable", func(t *testing.T) {
		f, c := newTestRoute53(t)
		f.AddZone("ZPUB", "example.com", false)
		f.Fail("ChangeResourceRecordSets", "InvalidInput", 1)
		var lines []string
		if _, err := testDNS(c, &lines).Ensure(context.Background()); err == nil || !strings.Contains(err.Error(), "InvalidInput") {
			t.Fatalf("Ensure error = %v", err)
		}
		if n := f.Calls("ChangeResourceRecordSets"); n != 1 {
			t.Errorf("ChangeResourceRecordSets called %d times, want 1 (InvalidInput is not retried)", n)
		}
	})
}

func TestDNSRefusesRecordsNotOwned(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []route53test.RecordSet
		want string
	}{
		{"A without TXT", []route53test.RecordSet{{Name: "registry.example.com", Type: "A", TTL: 60, Values: []string{"203.0.113.5"}}},
			`route53: registry.example.com. A record in zone example.com. is not owned by boot cluster "lab" (no TXT "heritage=boot,cluster=lab" beside it); boot will not overwrite it`},
		{"A owned by another cluster", []route53test.RecordSet{{Name: "registry.example.com", Type: "A", TTL: 60, Values: []string{"203.0.113.5"}},
			{Name: "registry.example.com", Type: "TXT", TTL: 60, Values: []string{`"heritage=boot,cluster=other"`}}},
			`not owned by boot cluster "lab" (no TXT "heritage=boot,cluster=lab" beside it; it is marked "heritage=boot,cluster=other")`},
		{"CNAME", []route53test.RecordSet{{Name: "registry.example.com", Type: "CNAME", TTL: 60, Values: []string{"elsewhere.example.net."}}},
			"route53: registry.example.com. has a CNAME record in zone example.com.; boot will not replace it"},
		{"owned alias", []route53test.RecordSet{{Name: "registry.example.com", Type: "A", Alias: &route53test.Alias{HostedZoneID: "Z2FDTNDATAQYW2", DNSName: "d111111abcdef8.cloudfront.net."}},
			{Name: "registry.example.com", Type: "TXT", TTL: 60, Values: []string{ownerTXT}}},
			"is an alias or has a routing policy; boot manages only a simple A record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newTestRoute53(t)
			zone := f.AddZone("ZPUB", "example.com", false)
			for _, rs := range tc.sets {
				f.PutRecordSet(zone, rs)
			}
			before := f.RecordSets(zone)
			var lines []string
			changed, err := testDNS(c, &lines).Ensure(context.Background())
			if changed || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Ensure = %v, %v; want an error with %q", changed, err, tc.want)
			}
			if n := f.Calls("ChangeResourceRecordSets"); n != 0 {
				t.Errorf("ChangeResourceRecordSets called %d times", n)
			}
			if after := f.RecordSets(zone); !slices.Equal(after, before) {
				t.Errorf("records changed:\n before %q\n after  %q", before, after)
			}
		})
	}
}

func TestDNSRemoveDeletesOnlyOwnedRecords(t *testing.T) {
	f, c := newTestRoute53(t)
	zone := f.AddZone("ZPUB", "example.com", false)
	f.SetPageSize(2) // the records span pages
	var lines []string
	d := testDNS(c, &lines)
	if _, err := d.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Records boot does not own: another type at the same name, the same type
	// at other names.
	f.PutRecordSet(zone, route53test.RecordSet{Name: "registry.example.com", Type: "AAAA", TTL: 300, Values: []string{"2001:db8::1"}})
	f.PutRecordSet(zone, route53test.RecordSet{Name: "other.example.com", Type: "A", TTL: 300, Values: []string{"198.51.100.2"}})
	f.PutRecordSet(zone, route53test.RecordSet{Name: "sub.registry.example.com", Type: "A", TTL: 300, Values: []string{"198.51.100.2"}})
	f.PutRecordSet(zone, route53test.RecordSet{Name: "sub.registry.example.com", Type: "TXT", TTL: 300, Values: []string{ownerTXT}})
	unowned := []string{"other.example.com. A 300 198.51.100.2", "registry.example.com. AAAA 300 2001:db8::1",
		"sub.registry.example.com. A 300 198.51.100.2", "sub.registry.example.com. TXT 300 " + ownerTXT}

	removed, err := d.Remove(context.Background())
	if err != nil || !removed {
		t.Fatalf("Remove = %v, %v", removed, err)
	}
	wantBatches(t, f,
		[]string{"UPSERT registry.example.com. A 300 198.51.100.2 198.51.100.12", "UPSERT registry.example.com. TXT 300 " + ownerTXT},
		[]string{"DELETE registry.example.com. A 300 198.51.100.2 198.51.100.12", "DELETE registry.example.com. TXT 300 " + ownerTXT})
	if b := f.Batches()[1]; b.Comment != "boot: teardown of cluster lab" {
		t.Errorf("teardown comment %q", b.Comment)
	}
	got := f.RecordSets(zone)
	if want := append([]string{"example.com. NS 172800 ns-1.awsdns-00.com. ns-2.awsdns-00.net.",
		"example.com. SOA 900 ns-1.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"}, unowned...); !slices.Equal(got, want) {
		t.Errorf("records after Remove:\n got  %q\n want %q", got, want)
	}

	// Idempotent: nothing left to remove, no change call.
	lines = nil
	if removed, err := d.Remove(context.Background()); err != nil || removed {
		t.Fatalf("second Remove = %v, %v", removed, err)
	}
	if n := f.Calls("ChangeResourceRecordSets"); n != 2 {
		t.Errorf("ChangeResourceRecordSets called %d times, want 2", n)
	}
	if !slices.ContainsFunc(lines, func(s string) bool {
		return strings.Contains(s, `has no record of boot cluster "lab"; nothing to remove`)
	}) {
		t.Errorf("progress %q", lines)
	}
}

func TestDNSSharesTXTWithOtherValues(t *testing.T) {
	f, c := newTestRoute53(t)
	zone := f.AddZone("ZPUB", "example.com", false)
	f.PutRecordSet(zone, route53test.RecordSet{Name: "registry.example.com", Type: "TXT", TTL: 3600, Values: []string{`"site-verification=abc"`}})
	var lines []string
	d := testDNS(c, &lines)
	if _, err := d.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantBatches(t, f,
		[]string{"UPSERT registry.example.com. A 300 198.51.100.2 198.51.100.12", `UPSERT registry.example.com. TXT 300 "site-verification=abc" ` + ownerTXT},
		[]string{"DELETE registry.example.com. A 300 198.51.100.2 198.51.100.12", `UPSERT registry.example.com. TXT 300 "site-verification=abc"`})
	if got := f.RecordSets(zone); !slices.Contains(got, `registry.example.com. TXT 300 "site-verification=abc"`) || len(got) != 3 {
		t.Errorf("records after Remove: %q", got)
	}
}

func TestDNSRemoveLeavesUnownedRecord(t *testing.T) {
	f, c := newTestRoute53(t)
	zone := f.AddZone("ZPUB", "example.com", false)
	f.PutRecordSet(zone, route53test.RecordSet{Name: "registry.example.com", Type: "A", TTL: 60, Values: []string{"203.0.113.5"}})
	f.PutRecordSet(zone, route53test.RecordSet{Name: "registry.example.com", Type: "TXT", TTL: 60, Values: []string{`"heritage=boot,cluster=other"`}})
	before := f.RecordSets(zone)
	var lines []string
	removed, err := testDNS(c, &lines).Remove(context.Background())
	if err != nil || removed {
		t.Fatalf("Remove = %v, %v; want false, nil", removed, err)
	}
	if n := f.Calls("ChangeResourceRecordSets"); n != 0 {
		t.Errorf("ChangeResourceRecordSets called %d times", n)
	}
	if after := f.RecordSets(zone); !slices.Equal(after, before) {
		t.Errorf("records changed:\n before %q\n after  %q", before, after)
	}
	if !slices.ContainsFunc(lines, func(s string) bool {
		return strings.Contains(s, `A record is not owned by boot cluster "lab"; left alone`)
	}) {
		t.Errorf("progress %q", lines)
	}
}

func TestDNSInvalidInput(t *testing.T) {
	f, c := newTestRoute53(t)
	f.AddZone("ZPUB", "example.com", false)
	for _, tc := range []struct {
		name string
		edit func(*DNS)
		want string
	}{
		{"host outside the zone", func(d *DNS) { d.Host = "registry.example.org" }, "route53: host registry.example.org. is not inside zone example.com."},
		{"similar zone suffix", func(d *DNS) { d.Host = "registry.notexample.com" }, "is not inside zone example.com."},
		{"IPv6 address", func(d *DNS) { d.Addresses = []string{"198.51.100.2", "2001:db8::1"} }, `address "2001:db8::1" is not an IPv4 address`},
		{"DNS name address", func(d *DNS) { d.Addresses = []string{"node1.example.com"} }, `address "node1.example.com" is not an IPv4 address`},
		{"no addresses", func(d *DNS) { d.Addresses = nil }, "no addresses for the A record"},
		{"no owner", func(d *DNS) { d.Owner = "" }, `owner "" is not a cluster name`},
		{"owner with a quote", func(d *DNS) { d.Owner = `a"b` }, `is not a cluster name`},
		{"no zone", func(d *DNS) { d.Zone = "" }, "the hosted zone name is empty"},
		{"no client", func(d *DNS) { d.Client = nil }, "route53: no client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lines []string
			d := testDNS(c, &lines)
			tc.edit(&d)
			if _, err := d.Ensure(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Ensure error = %v, want one with %q", err, tc.want)
			}
		})
	}
	if n := f.Calls("ListHostedZonesByName"); n != 0 {
		t.Errorf("bad input reached Route53 (%d zone lookups)", n)
	}
}

func TestNewRoute53ClientNeedsCredentials(t *testing.T) {
	route53test.SetCredentialsEnv(t, "", "")
	_, err := NewRoute53Client(context.Background(), Route53Config{Endpoint: "http://127.0.0.1:9"})
	if err == nil || !strings.Contains(err.Error(), "route53: no AWS credentials from the default chain") {
		t.Fatalf("NewRoute53Client error = %v", err)
	}
}

// No secret reaches an error or a progress line, whatever the outcome, and
// the secret key is never sent (the fake checks each request).
func TestDNSNoSecretInOutput(t *testing.T) {
	f, c := newTestRoute53(t)
	f.AddZone("ZPUB", "example.com", false)
	var lines []string
	var errs []error
	d := testDNS(c, &lines)
	_, err := d.Ensure(context.Background())
	errs = append(errs, err)
	f.Fail("ListHostedZonesByName", "SignatureDoesNotMatch", 1)
	f.Fail("ListHostedZonesByName", "InvalidClientTokenId", 1)
	for range 2 {
		_, err = d.Remove(context.Background())
		errs = append(errs, err)
	}
	if errs[1] == nil || errs[2] == nil {
		t.Fatalf("injected auth errors did not surface: %v", errs)
	}
	d.Wait, d.Poll = 20*time.Millisecond, 5*time.Millisecond
	f.SetPendingPolls(1 << 30)
	d.Addresses = []string{"198.51.100.99"}
	_, err = d.Ensure(context.Background())
	errs = append(errs, err)
	for _, err := range errs {
		if err != nil {
			lines = append(lines, err.Error())
		}
	}
	for _, l := range lines {
		if strings.Contains(l, route53test.SecretKey) || strings.Contains(l, route53test.SecretKey[:12]) {
			t.Errorf("secret in output: %q", l)
		}
	}
}

// Route53 rejects a DELETE whose values are not the current ones: when the
// record changed between boot's read and its change, the error says so in
// Route53's words and nothing is deleted.
func TestDNSRemoveRejectedAfterConcurrentChange(t *testing.T) {
	f, c := newTestRoute53(t)
	zone := f.AddZone("ZPUB", "example.com", false)
	var lines []string
	d := testDNS(c, &lines)
	if _, err := d.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.BeforeChange(func() {
		f.PutRecordSet(zone, route53test.RecordSet{Name: "registry.example.com", Type: "A", TTL: 300, Values: []string{"203.0.113.9"}})
	})
	removed, err := d.Remove(context.Background())
	want := "InvalidChangeBatch: ChangeBatch errors occurred: Tried to delete resource record set [name='registry.example.com.', type='A', set-identifier=''] but the values provided do not match the current values"
	if removed || err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Remove = %v, %v; want false and an error with %q", removed, err, want)
	}
	if got := f.RecordSets(zone); !slices.Contains(got, "registry.example.com. A 300 203.0.113.9") || !slices.Contains(got, "registry.example.com. TXT 300 "+ownerTXT) {
		t.Errorf("records after the rejected batch: %q", got)
	}
	if n := f.Calls("ChangeResourceRecordSets"); n != 2 {
		t.Errorf("ChangeResourceRecordSets called %d times, want 2 (a rejected batch is not retried)", n)
	}
}
