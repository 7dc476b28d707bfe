package addons

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/bootctl/boot/internal/run"
)

// Route53API is the part of the Route53 API that DNS uses; *route53.Client
// implements it.
type Route53API interface {
	ListHostedZonesByName(context.Context, *route53.ListHostedZonesByNameInput, ...func(*route53.Options)) (*route53.ListHostedZonesByNameOutput, error)
	ListResourceRecordSets(context.Context, *route53.ListResourceRecordSetsInput, ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error)
	ChangeResourceRecordSets(context.Context, *route53.ChangeResourceRecordSetsInput, ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error)
	GetChange(context.Context, *route53.GetChangeInput, ...func(*route53.Options)) (*route53.GetChangeOutput, error)
}

// Route53Config says how NewRoute53Client reaches Route53. The zero value is
// AWS itself with the default retry bounds.
type Route53Config struct {
	// Endpoint overrides the Route53 endpoint (BaseEndpoint), e.g. a local
	// server in tests; empty means AWS.
	Endpoint string
	// MaxAttempts bounds the attempts per API call (first try included) on
	// throttling (Throttling, PriorRequestNotComplete) and other transient
	// errors; default 10.
	MaxAttempts int
	// MaxBackoff caps the delay between two attempts; default 20s. The delay
	// grows exponentially with jitter (from 1s on throttling).
	MaxBackoff time.Duration
}

// Defaults of Route53Config and DNS.
const (
	defaultRoute53Attempts = 10
	defaultRoute53Backoff  = 20 * time.Second
	defaultRoute53Region   = "us-east-1" // Route53 is global; its API is signed for us-east-1
	defaultDNSWait         = 5 * time.Minute
	defaultDNSPoll         = 2 * time.Second
	maxDNSPollFactor       = 8 // the poll interval doubles up to 8 times the first
)

// NewRoute53Client returns a Route53 client with credentials from the default
// AWS chain (environment, shared config and credentials files, SSO, web
// identity, container and instance roles), region us-east-1 unless the
// configuration names one, and a retryer bounded by c that retries throttling
// (the SDK's standard retryer treats Throttling and PriorRequestNotComplete as
// retryable throttle errors). It fails early, without naming any secret, when
// the chain yields no credentials.
func NewRoute53Client(ctx context.Context, c Route53Config) (*route53.Client, error) {
	client, _, _, err := newRoute53(ctx, c)
	return client, err
}

// newRoute53 is NewRoute53Client that also returns the credentials the
// client signs with and its region.
func newRoute53(ctx context.Context, c Route53Config) (*route53.Client, aws.Credentials, string, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, aws.Credentials{}, "", fmt.Errorf("route53: loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultRoute53Region
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, aws.Credentials{}, "", fmt.Errorf("route53: no AWS credentials from the default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, SSO, web identity, container or instance role): %w", err)
	}
	attempts := c.MaxAttempts
	if attempts <= 0 {
		attempts = defaultRoute53Attempts
	}
	backoff := c.MaxBackoff
	if backoff <= 0 {
		backoff = defaultRoute53Backoff
	}
	client := route53.NewFromConfig(cfg, func(o *route53.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = attempts
			so.MaxBackoff = backoff
		})
	})
	return client, creds, cfg.Region, nil
}

// DNS is the registry host's A record in a Route53 hosted zone. Beside it, in
// the same change batch, a TXT record with the value
// "heritage=boot,cluster=<Owner>" marks it as boot's: Ensure overwrites only
// an A record marked so, and Remove deletes only marked records.
type DNS struct {
	Client    Route53API
	Zone      string   // hosted zone name, e.g. example.com (a trailing dot is optional)
	Host      string   // the record's name, e.g. registry.example.com, inside Zone
	TTL       int64    // seconds; default 300
	Addresses []string // IPv4 addresses the A record points at
	Owner     string   // the cluster's name, written into the ownership TXT record
	// Report hears, as OK events of phase "dns" about Host, of each step
	// (zone found, change submitted, each wait poll).
	Report run.Reporter
	// Wait bounds the wait for a submitted change to be INSYNC; default 5m.
	Wait time.Duration
	// Poll is the first interval between GetChange calls; it doubles up to
	// 8 times this; default 2s.
	Poll time.Duration
}

// record sets found at the host's name, by what DNS does with them.
type hostRecords struct {
	a     []types.ResourceRecordSet // A record sets (more than one only with routing policies)
	txt   *types.ResourceRecordSet  // the simple TXT record set, if any
	cname *types.ResourceRecordSet
}

// recordChange is one change batch DNS plans, submitted by submit.
type recordChange struct {
	zoneID  string
	changes []types.Change
	comment string
	what    string // for messages: "UPSERT ..." or "DELETE ..."
}

// Ensure makes the A record point at the addresses with the TTL, marked as
// boot's. It reads the current records first: when they already match it
// makes no change and returns false. It refuses to overwrite an A record not
// marked as this cluster's. After a change it waits for Route53 to report it
// INSYNC; a wait that times out returns true with an error (the change was
// submitted and Route53 applies it).
func (d DNS) Ensure(ctx context.Context) (bool, error) {
	c, err := d.planEnsure(ctx)
	if err != nil || c == nil {
		return false, err
	}
	return d.submit(ctx, c)
}

// planEnsure reads the records and returns the change Ensure makes, or nil
// when the record is up to date.
func (d DNS) planEnsure(ctx context.Context) (*recordChange, error) {
	host, zoneName, owner, err := d.names()
	if err != nil {
		return nil, err
	}
	addrs, err := d.addresses(host)
	if err != nil {
		return nil, err
	}
	ttl := d.TTL
	if ttl == 0 {
		ttl = 300
	}
	if ttl < 0 || ttl > 2147483647 {
		return nil, fmt.Errorf("route53: %s: TTL %d is out of range (0-2147483647 seconds)", host, ttl)
	}
	zoneID, recs, err := d.lookup(ctx, zoneName, host)
	if err != nil {
		return nil, err
	}
	if recs.cname != nil {
		return nil, fmt.Errorf("route53: %s has a CNAME record in zone %s; boot will not replace it with an A record (remove it or choose another registry.host)", host, zoneName)
	}
	owned := recs.ownedBy(owner)
	if len(recs.a) > 0 && !owned {
		return nil, fmt.Errorf("route53: %s A record in zone %s is not owned by boot cluster %q (no TXT %s beside it%s); boot will not overwrite it (delete it or choose another registry.host)",
			host, zoneName, d.Owner, owner, recs.otherOwners())
	}
	for _, a := range recs.a {
		if a.SetIdentifier != nil || a.AliasTarget != nil {
			return nil, fmt.Errorf("route53: %s A record in zone %s is an alias or has a routing policy; boot manages only a simple A record (delete it or choose another registry.host)", host, zoneName)
		}
	}
	if len(recs.a) == 1 && owned && aws.ToInt64(recs.a[0].TTL) == ttl && sameAddresses(recordValues(recs.a[0]), addrs) {
		d.progress(fmt.Sprintf("route53: %s A %s TTL %d is up to date", host, strings.Join(addrs, ","), ttl))
		return nil, nil
	}
	txtValues := []string{owner}
	if recs.txt != nil {
		txtValues = recordValues(*recs.txt)
		if !slices.Contains(txtValues, owner) {
			txtValues = append(txtValues, owner)
		}
	}
	changes := []types.Change{
		{Action: types.ChangeActionUpsert, ResourceRecordSet: simpleSet(host, types.RRTypeA, ttl, addrs)},
		{Action: types.ChangeActionUpsert, ResourceRecordSet: simpleSet(host, types.RRTypeTxt, ttl, txtValues)},
	}
	what := fmt.Sprintf("UPSERT %s A %s TTL %d with TXT %s", host, strings.Join(addrs, ","), ttl, owner)
	return &recordChange{zoneID: zoneID, changes: changes, comment: "boot: registry host of cluster " + d.Owner, what: what}, nil
}

// Remove deletes the A record and the ownership TXT value when they are this
// cluster's, in one change batch with their exact current values, and waits
// for INSYNC. Other values of the TXT record stay (it is rewritten without
// boot's). Records not owned by boot are left alone, and absent records are
// fine: it then returns false and no error.
func (d DNS) Remove(ctx context.Context) (bool, error) {
	c, err := d.planRemove(ctx)
	if err != nil || c == nil {
		return false, err
	}
	return d.submit(ctx, c)
}

// planRemove reads the records and returns the change Remove makes, or nil
// when there is nothing of this cluster's to remove.
func (d DNS) planRemove(ctx context.Context) (*recordChange, error) {
	host, zoneName, owner, err := d.names()
	if err != nil {
		return nil, err
	}
	zoneID, recs, err := d.lookup(ctx, zoneName, host)
	if err != nil {
		return nil, err
	}
	if !recs.ownedBy(owner) {
		if len(recs.a) > 0 {
			d.progress(fmt.Sprintf("route53: %s A record is not owned by boot cluster %q; left alone", host, d.Owner))
		} else {
			d.progress(fmt.Sprintf("route53: %s has no record of boot cluster %q; nothing to remove", host, d.Owner))
		}
		return nil, nil
	}
	var changes []types.Change
	for _, a := range recs.a {
		changes = append(changes, types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: &a})
	}
	rest := slices.DeleteFunc(recordValues(*recs.txt), func(v string) bool { return v == owner })
	if len(rest) == 0 {
		changes = append(changes, types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: recs.txt})
	} else {
		changes = append(changes, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: simpleSet(host, types.RRTypeTxt, aws.ToInt64(recs.txt.TTL), rest)})
	}
	what := fmt.Sprintf("DELETE %s A and TXT %s", host, owner)
	return &recordChange{zoneID: zoneID, changes: changes, comment: "boot: teardown of cluster " + d.Owner, what: what}, nil
}

// names checks and returns the host and zone as lower-case names with a
// trailing dot, and the ownership TXT value.
func (d DNS) names() (host, zone, owner string, err error) {
	if d.Client == nil {
		return "", "", "", errors.New("route53: no client")
	}
	zone, host = fqdn(d.Zone), fqdn(d.Host)
	if zone == "." {
		return "", "", "", errors.New("route53: the hosted zone name is empty")
	}
	if host == "." {
		return "", "", "", errors.New("route53: the registry host name is empty")
	}
	if host != zone && !strings.HasSuffix(host, "."+zone) {
		return "", "", "", fmt.Errorf("route53: host %s is not inside zone %s", host, zone)
	}
	if d.Owner == "" || strings.ContainsAny(d.Owner, "\"\\, \t\r\n=") {
		return "", "", "", fmt.Errorf("route53: owner %q is not a cluster name (non-empty, no quotes, backslashes, commas, '=' or spaces)", d.Owner)
	}
	return host, zone, `"heritage=boot,cluster=` + d.Owner + `"`, nil
}

// addresses returns the A record's values: IPv4 addresses, sorted, without
// duplicates.
func (d DNS) addresses(host string) ([]string, error) {
	if len(d.Addresses) == 0 {
		return nil, fmt.Errorf("route53: %s: no addresses for the A record", host)
	}
	out, bad := normalizeIPv4(d.Addresses)
	if bad != "" {
		return nil, fmt.Errorf("route53: %s: address %q is not an IPv4 address (an A record needs IPv4 addresses)", host, bad)
	}
	return out, nil
}

// normalizeIPv4 returns the addresses in canonical form, sorted, without
// duplicates; or the first value that is not an IPv4 address.
func normalizeIPv4(values []string) (out []string, bad string) {
	var ips []netip.Addr
	for _, s := range values {
		ip, err := netip.ParseAddr(s)
		if err != nil || !ip.Unmap().Is4() {
			return nil, s
		}
		ips = append(ips, ip.Unmap())
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	for _, ip := range slices.Compact(ips) {
		out = append(out, ip.String())
	}
	return out, ""
}

// sameAddresses tells whether the current A values are the wanted addresses.
func sameAddresses(current, want []string) bool {
	norm, bad := normalizeIPv4(current)
	return bad == "" && slices.Equal(norm, want)
}

// lookup finds the zone and reads host's records in it.
func (d DNS) lookup(ctx context.Context, zoneName, host string) (string, hostRecords, error) {
	zoneID, err := d.findZone(ctx, zoneName)
	if err != nil {
		return "", hostRecords{}, err
	}
	recs, err := d.records(ctx, zoneID, host)
	return zoneID, recs, err
}

// findZone returns the ID of the hosted zone named exactly name: the public
// one when a public and a private zone share the name.
func (d DNS) findZone(ctx context.Context, name string) (string, error) {
	in := &route53.ListHostedZonesByNameInput{DNSName: aws.String(name)}
	var public, private []types.HostedZone
	for {
		out, err := d.Client.ListHostedZonesByName(ctx, in)
		if err != nil {
			return "", fmt.Errorf("route53: looking up hosted zone %s: %w", name, err)
		}
		past := false // the listing starts at name and is sorted: the first other name ends the matches
		for _, z := range out.HostedZones {
			if fqdn(aws.ToString(z.Name)) != name {
				past = true
				break
			}
			if z.Config != nil && z.Config.PrivateZone {
				private = append(private, z)
			} else {
				public = append(public, z)
			}
		}
		if past || !out.IsTruncated || out.NextDNSName == nil {
			break
		}
		in = &route53.ListHostedZonesByNameInput{DNSName: out.NextDNSName, HostedZoneId: out.NextHostedZoneId}
	}
	pick := public
	kind := "public"
	if len(pick) == 0 {
		pick, kind = private, "private"
	}
	switch len(pick) {
	case 0:
		return "", fmt.Errorf("route53: no hosted zone named %s in this AWS account (create it, or set dns.zone to an existing zone)", name)
	case 1:
		id := aws.ToString(pick[0].Id)
		d.progress(fmt.Sprintf("route53: hosted zone %s is %s (%s)", name, id, kind))
		return id, nil
	}
	var ids []string
	for _, z := range pick {
		ids = append(ids, aws.ToString(z.Id))
	}
	return "", fmt.Errorf("route53: %d %s hosted zones are named %s (%s); boot cannot tell which to use", len(pick), kind, name, strings.Join(ids, ", "))
}

// records lists the record sets named host in the zone.
func (d DNS) records(ctx context.Context, zoneID, host string) (hostRecords, error) {
	var recs hostRecords
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID), StartRecordName: aws.String(host)}
	for {
		out, err := d.Client.ListResourceRecordSets(ctx, in)
		if err != nil {
			return recs, fmt.Errorf("route53: listing the records of %s: %w", host, err)
		}
		past := false
		for _, rs := range out.ResourceRecordSets {
			if fqdn(aws.ToString(rs.Name)) != host {
				past = true
				break
			}
			switch {
			case rs.Type == types.RRTypeA:
				recs.a = append(recs.a, rs)
			case rs.Type == types.RRTypeTxt && rs.SetIdentifier == nil && rs.AliasTarget == nil:
				recs.txt = &rs
			case rs.Type == types.RRTypeCname:
				recs.cname = &rs
			}
		}
		if past || !out.IsTruncated || out.NextRecordName == nil {
			return recs, nil
		}
		in = &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID), StartRecordName: out.NextRecordName,
			StartRecordType: out.NextRecordType, StartRecordIdentifier: out.NextRecordIdentifier}
	}
}

func (r hostRecords) ownedBy(owner string) bool {
	return r.txt != nil && slices.Contains(recordValues(*r.txt), owner)
}

// otherOwners names the boot clusters that mark the record, for an error.
func (r hostRecords) otherOwners() string {
	if r.txt == nil {
		return ""
	}
	var others []string
	for _, v := range recordValues(*r.txt) {
		if strings.HasPrefix(v, `"heritage=boot,`) {
			others = append(others, v)
		}
	}
	if len(others) == 0 {
		return ""
	}
	return "; it is marked " + strings.Join(others, ", ")
}

// submit submits one change batch and waits until it is INSYNC. It tells
// whether Route53 accepted the batch.
func (d DNS) submit(ctx context.Context, c *recordChange) (bool, error) {
	what := c.what
	out, err := d.Client.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(c.zoneID),
		ChangeBatch:  &types.ChangeBatch{Comment: aws.String(c.comment), Changes: c.changes},
	})
	if err != nil {
		var invalid *types.InvalidChangeBatch
		if errors.As(err, &invalid) && len(invalid.Messages) > 0 {
			return false, fmt.Errorf("route53: %s: %w: %s", what, err, strings.Join(invalid.Messages, "; "))
		}
		return false, fmt.Errorf("route53: %s: %w", what, err)
	}
	if out.ChangeInfo == nil || out.ChangeInfo.Id == nil {
		return true, fmt.Errorf("route53: %s: the response has no change ID", what)
	}
	id := aws.ToString(out.ChangeInfo.Id)
	d.progress(fmt.Sprintf("route53: %s: change %s is %s", what, id, out.ChangeInfo.Status))
	if out.ChangeInfo.Status == types.ChangeStatusInsync {
		return true, nil
	}
	return true, d.waitInsync(ctx, id)
}

// waitInsync polls GetChange with a doubling interval until the change is
// INSYNC or the wait is over.
func (d DNS) waitInsync(ctx context.Context, id string) error {
	wait, poll := d.Wait, d.Poll
	if wait <= 0 {
		wait = defaultDNSWait
	}
	if poll <= 0 {
		poll = defaultDNSPoll
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	timedOut := func(status types.ChangeStatus) error {
		return fmt.Errorf("route53: change %s is still %s after %s (the longest boot waits); Route53 will apply it, re-run to check", id, status, wait.Round(time.Millisecond))
	}
	status := types.ChangeStatusPending
	interval := poll
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("route53: waiting for change %s: %w", id, ctx.Err())
			}
			return timedOut(status)
		case <-timer.C:
		}
		out, err := d.Client.GetChange(wctx, &route53.GetChangeInput{Id: aws.String(id)})
		if err != nil {
			if ctx.Err() == nil && wctx.Err() != nil {
				return timedOut(status)
			}
			return fmt.Errorf("route53: waiting for change %s: %w", id, err)
		}
		if out.ChangeInfo != nil {
			status = out.ChangeInfo.Status
		}
		elapsed := time.Since(start).Round(time.Millisecond)
		if status == types.ChangeStatusInsync {
			d.progress(fmt.Sprintf("route53: change %s is INSYNC after %s", id, elapsed))
			return nil
		}
		d.progress(fmt.Sprintf("route53: change %s is %s after %s (waiting at most %s)", id, status, elapsed, wait))
		interval = min(2*interval, maxDNSPollFactor*poll)
		timer.Reset(interval)
	}
}

func (d DNS) progress(line string) {
	d.Report.Report(run.Event{Phase: DNSPhase, Host: d.Host, Status: run.OK, Message: line})
}

// DNSPhase names the DNS record's steps in a run's events.
const DNSPhase = "dns"

// EnsureStep is Ensure as a step of a run: its plan reads the records, and
// its change says what it writes ("UPSERT <host> A <addresses> TTL <ttl>
// with TXT <owner>").
func (d DNS) EnsureStep() run.Step {
	return d.step(DNS.planEnsure, DNS.Ensure)
}

// RemoveStep is Remove as a step of a run: its plan reads the records.
func (d DNS) RemoveStep() run.Step {
	return d.step(DNS.planRemove, DNS.Remove)
}

// step plans with plan and, when that finds a change, applies it with apply,
// which reads the records again (they may have changed since).
func (d DNS) step(plan func(DNS, context.Context) (*recordChange, error), apply func(DNS, context.Context) (bool, error)) run.Step {
	return run.Step{Phase: DNSPhase, Host: d.Host, Plan: func(ctx context.Context, s *run.State) ([]run.Change, error) {
		d.Report = s.Report
		c, err := plan(d, ctx)
		if err != nil || c == nil {
			return nil, err
		}
		return []run.Change{{Host: d.Host, Description: c.what, Apply: func(ctx context.Context) error {
			_, err := apply(d, ctx)
			return err
		}}}, nil
	}}
}

// fqdn returns name in lower case with one trailing dot.
func fqdn(name string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), ".")) + "."
}

func simpleSet(name string, typ types.RRType, ttl int64, values []string) *types.ResourceRecordSet {
	rs := &types.ResourceRecordSet{Name: aws.String(name), Type: typ, TTL: aws.Int64(ttl)}
	for _, v := range values {
		rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return rs
}

// recordValues returns a record set's values.
func recordValues(rs types.ResourceRecordSet) []string {
	var out []string
	for _, r := range rs.ResourceRecords {
		out = append(out, aws.ToString(r.Value))
	}
	return out
}
