// Package route53test runs a fake Amazon Route53 on 127.0.0.1 for tests:
// the REST/XML API (version 2013-04-01) that the AWS SDK's route53 client
// speaks, and a DNS server answering for the records of its hosted zones.
//
// It is test support only: import it from _test.go files, never from code
// that builds into boot, so that it never links into the binary.
//
// The API side serves ListHostedZonesByName, ListResourceRecordSets,
// ChangeResourceRecordSets (validated and applied atomically, with Route53's
// rules for CREATE, DELETE and UPSERT, rejected batches answered as
// InvalidChangeBatch in Route53's own words) and GetChange. It keeps zones and
// record sets in memory, records every change batch it receives, counts
// requests per operation, checks that each request is signed (SigV4) for
// region us-east-1 with [AccessKey] and never carries [SecretKey], and answers
// injected AWS errors on request ([Server.Fail]).
//
// The DNS side ([Server.DNSAddr]) is described in dns.go.
//
// A test starts one with [Start], adds zones with [Server.AddZone], points the
// SDK at [Server.URL] (addons.Route53Config.Endpoint, or boot's
// --route53-endpoint) with the credentials [SetCredentialsEnv] puts into the
// environment, and reads back [Server.RecordSets], [Server.Batches] and
// [Server.Calls].
package route53test

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The credentials the fake accepts: requests must be signed with AccessKey;
// SecretKey must never appear in a request.
const (
	AccessKey = "AKIDBOOTTEST00000001"
	SecretKey = "bootTestSecret/DoNotShow+0123456789abcdefXYZ"
)

// The operations, as named in [Server.Fail] and [Server.Calls].
const (
	ListHostedZonesByName    = "ListHostedZonesByName"
	ListResourceRecordSets   = "ListResourceRecordSets"
	ChangeResourceRecordSets = "ChangeResourceRecordSets"
	GetChange                = "GetChange"
)

// Server is a running fake Route53. Its methods are safe for concurrent use.
type Server struct {
	t   testing.TB
	srv *httptest.Server
	dns *dnsServer

	mu           sync.Mutex
	zones        []*zone
	pageSize     int                // items per list page unless the request's maxitems is smaller
	pendingPolls int                // GetChange calls that answer PENDING before INSYNC
	pending      map[string]int     // change ID -> PENDING answers left
	batches      []Batch            // every change batch received, accepted or not
	calls        map[string]int     // operation -> requests received
	faults       map[string][]fault // operation -> errors to answer, in order
	queries      []string           // DNS questions received
	nextChange   int
	beforeChange func()
}

type zone struct {
	id      string // as Route53 returns it: /hostedzone/Z...
	name    string // lower case, trailing dot
	private bool
	sets    []RecordSet
}

// RecordSet is a resource record set as the fake keeps it.
type RecordSet struct {
	Name          string // a trailing dot is added when missing
	Type          string // A, AAAA, TXT, CNAME, NS, SOA, ...
	SetIdentifier string
	Weight        *int64
	Alias         *Alias // an alias record set has no TTL and no Values
	TTL           int64
	Values        []string // as Route53 writes them: TXT values in quotes
}

// Alias is the target of an alias record set.
type Alias struct {
	HostedZoneID         string
	DNSName              string
	EvaluateTargetHealth bool
}

// String writes the set compactly, as [Server.RecordSets] and
// [Batch.Changes] do: "name TYPE [id=...] [alias=...] ttl value...".
func (rs RecordSet) String() string {
	s := rs.Name + " " + rs.Type
	if rs.SetIdentifier != "" {
		s += " id=" + rs.SetIdentifier
	}
	if rs.Alias != nil {
		s += " alias=" + rs.Alias.DNSName
	} else {
		s += " " + strconv.FormatInt(rs.TTL, 10)
	}
	for _, v := range rs.Values {
		s += " " + v
	}
	return s
}

func (rs RecordSet) same(o RecordSet) bool {
	return rs.String() == o.String() && (rs.Weight == nil) == (o.Weight == nil) && (rs.Weight == nil || *rs.Weight == *o.Weight)
}

// Batch is one ChangeResourceRecordSets request as the fake received it.
type Batch struct {
	Zone     string   // zone ID without /hostedzone/
	Comment  string   //
	Changes  []string // "ACTION " + the RecordSet's String
	Accepted bool     // false when the fake answered InvalidChangeBatch
}

type fault struct {
	status int
	code   string
}

// Start starts a fake Route53 API on an HTTP server and its DNS server on UDP
// and TCP, all on 127.0.0.1 random ports, stopped when the test ends.
// Requests the fake does not expect fail the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, pageSize: 100, pending: map[string]int{}, calls: map[string]int{}, faults: map[string][]fault{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2013-04-01/hostedzonesbyname", s.op(ListHostedZonesByName, s.listZones))
	mux.HandleFunc("GET /2013-04-01/hostedzone/{id}/rrset", s.op(ListResourceRecordSets, s.listSets))
	mux.HandleFunc("POST /2013-04-01/hostedzone/{id}/rrset", s.op(ChangeResourceRecordSets, s.changeSets))
	mux.HandleFunc("GET /2013-04-01/change/{id}", s.op(GetChange, s.getChange))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("fake route53: unexpected request %s %s", r.Method, r.URL)
		writeAWSError(w, http.StatusNotFound, "UnknownOperationException", "no such operation")
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	dns, err := startDNS(s)
	if err != nil {
		t.Fatalf("fake route53: DNS server: %v", err)
	}
	t.Cleanup(dns.close)
	s.dns = dns
	return s
}

// SetCredentialsEnv points the AWS SDK's default credential chain at static
// credentials from the environment and nothing else: no shared files, no
// region, no instance metadata, no endpoint or retry settings. Pass
// [AccessKey] and [SecretKey] for a client the fake accepts, or empty strings
// for none.
func SetCredentialsEnv(t testing.TB, accessKey, secretKey string) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secretKey, "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_CONFIG_FILE": dir + "/config", "AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_ROUTE_53": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_RETRY_MODE": "", "AWS_MAX_ATTEMPTS": "",
	} {
		t.Setenv(k, v)
	}
}

// URL is the API's base URL, for the SDK's BaseEndpoint.
func (s *Server) URL() string { return s.srv.URL }

// AddZone adds a hosted zone with its NS and SOA record sets and returns its
// ID as Route53 does (/hostedzone/<id>).
func (s *Server) AddZone(id, name string, private bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = fqdn(name)
	z := &zone{id: "/hostedzone/" + id, name: name, private: private}
	z.sets = []RecordSet{
		{Name: name, Type: "NS", TTL: 172800, Values: []string{"ns-1.awsdns-00.com.", "ns-2.awsdns-00.net."}},
		{Name: name, Type: "SOA", TTL: 900, Values: []string{"ns-1.awsdns-00.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"}},
	}
	s.zones = append(s.zones, z)
	return z.id
}

// PutRecordSet puts a record set into a zone directly, as a change made
// outside the code under test would: it replaces the set with the same name,
// type and set identifier, or adds it. zoneID is as [Server.AddZone] returns
// it, with or without /hostedzone/.
func (s *Server) PutRecordSet(zoneID string, rs RecordSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs.Name = fqdn(rs.Name)
	z := s.mustZone(zoneID)
	if i := z.find(rs); i >= 0 {
		z.sets[i] = rs
	} else {
		z.sets = append(z.sets, rs)
	}
}

// RecordSets returns a zone's record sets in Route53's order, in
// [RecordSet.String]'s form.
func (s *Server) RecordSets(zoneID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.mustZone(zoneID)
	sortSets(z.sets)
	var out []string
	for _, rs := range z.sets {
		out = append(out, rs.String())
	}
	return out
}

// SetPageSize sets how many items a list page holds at most (100 unless
// set), fewer when the request asks for fewer.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = n
}

// SetPendingPolls makes the changes accepted from now on answer PENDING to n
// GetChange calls before INSYNC (0 unless set).
func (s *Server) SetPendingPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pendingPolls = n
}

// BeforeChange sets a function that runs when a change batch arrives, before
// it is validated: someone else changing the zone meanwhile (with
// [Server.PutRecordSet]).
func (s *Server) BeforeChange(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beforeChange = f
}

// Fail makes the next n requests of operation op answer the AWS error code
// with HTTP status 400 (e.g. "Throttling", "PriorRequestNotComplete").
func (s *Server) Fail(op, code string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[op] = append(s.faults[op], fault{http.StatusBadRequest, code})
	}
}

// Calls returns how many requests of operation op arrived, faults included.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Batches returns every change batch received, accepted or not, in order.
func (s *Server) Batches() []Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches)
}

func (s *Server) mustZone(id string) *zone {
	z := s.zone(strings.TrimPrefix(id, "/hostedzone/"))
	if z == nil {
		s.t.Fatalf("fake route53: no zone %s", id)
	}
	return z
}

func (s *Server) zone(id string) *zone {
	for _, z := range s.zones {
		if z.id == "/hostedzone/"+id {
			return z
		}
	}
	return nil
}

func (z *zone) find(rs RecordSet) int {
	return slices.IndexFunc(z.sets, func(o RecordSet) bool {
		return o.Name == rs.Name && o.Type == rs.Type && o.SetIdentifier == rs.SetIdentifier
	})
}

func fqdn(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

const route53NS = "https://route53.amazonaws.com/doc/2013-04-01/"

// XML shapes of the API, as the SDK serializes and expects them.
type xmlRRSet struct {
	Name          string    `xml:"Name"`
	Type          string    `xml:"Type"`
	SetIdentifier string    `xml:"SetIdentifier,omitempty"`
	Weight        *int64    `xml:"Weight,omitempty"`
	AliasTarget   *xmlAlias `xml:"AliasTarget,omitempty"`
	TTL           *int64    `xml:"TTL,omitempty"`
	Records       []struct {
		Value string `xml:"Value"`
	} `xml:"ResourceRecords>ResourceRecord"`
}

type xmlAlias struct {
	HostedZoneID         string `xml:"HostedZoneId"`
	DNSName              string `xml:"DNSName"`
	EvaluateTargetHealth bool   `xml:"EvaluateTargetHealth"`
}

func toXML(rs RecordSet) xmlRRSet {
	x := xmlRRSet{Name: rs.Name, Type: rs.Type, SetIdentifier: rs.SetIdentifier, Weight: rs.Weight}
	if rs.Alias != nil {
		x.AliasTarget = &xmlAlias{HostedZoneID: rs.Alias.HostedZoneID, DNSName: rs.Alias.DNSName, EvaluateTargetHealth: rs.Alias.EvaluateTargetHealth}
	} else {
		ttl := rs.TTL
		x.TTL = &ttl
	}
	for _, v := range rs.Values {
		x.Records = append(x.Records, struct {
			Value string `xml:"Value"`
		}{v})
	}
	return x
}

func fromXML(x xmlRRSet) RecordSet {
	rs := RecordSet{Name: x.Name, Type: x.Type, SetIdentifier: x.SetIdentifier, Weight: x.Weight}
	if x.AliasTarget != nil {
		rs.Alias = &Alias{HostedZoneID: x.AliasTarget.HostedZoneID, DNSName: x.AliasTarget.DNSName, EvaluateTargetHealth: x.AliasTarget.EvaluateTargetHealth}
	}
	if x.TTL != nil {
		rs.TTL = *x.TTL
	}
	for _, r := range x.Records {
		rs.Values = append(rs.Values, r.Value)
	}
	return rs
}

type xmlChangeRequest struct {
	XMLName xml.Name `xml:"ChangeResourceRecordSetsRequest"`
	Comment string   `xml:"ChangeBatch>Comment"`
	Changes []struct {
		Action string   `xml:"Action"`
		Set    xmlRRSet `xml:"ResourceRecordSet"`
	} `xml:"ChangeBatch>Changes>Change"`
}

type xmlChangeInfo struct {
	ID          string `xml:"Id"`
	Status      string `xml:"Status"`
	SubmittedAt string `xml:"SubmittedAt"`
	Comment     string `xml:"Comment,omitempty"`
}

// xmlList holds the elements every list response has.
type xmlList struct {
	NS          string `xml:"xmlns,attr"`
	IsTruncated bool   `xml:"IsTruncated"`
	MaxItems    int    `xml:"MaxItems"`
}

type xmlHostedZone struct {
	ID              string `xml:"Id"`
	Name            string `xml:"Name"`
	CallerReference string `xml:"CallerReference"`
	PrivateZone     bool   `xml:"Config>PrivateZone"`
	RecordCount     int    `xml:"ResourceRecordSetCount"`
}

var sigV4 = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/route53/aws4_request, SignedHeaders=\S+, Signature=[0-9a-f]{64}$`)

// op wraps a handler: it counts the request, checks its signature and that
// no secret is in it, and answers an injected fault instead when one is due.
func (s *Server) op(name string, h func(http.ResponseWriter, *http.Request, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			s.t.Errorf("fake route53: %s: reading the body: %v", name, err)
		}
		m := sigV4.FindStringSubmatch(r.Header.Get("Authorization"))
		if m == nil || m[1] != AccessKey || m[2] != "us-east-1" {
			s.t.Errorf("fake route53: %s: Authorization %q is not a SigV4 signature with the test access key for us-east-1", name, r.Header.Get("Authorization"))
		}
		if dump := fmt.Sprint(r.URL, r.Header) + string(body); strings.Contains(dump, SecretKey) {
			s.t.Errorf("fake route53: %s: the secret access key was sent", name)
		}
		s.mu.Lock()
		s.calls[name]++
		var ft *fault
		if q := s.faults[name]; len(q) > 0 {
			ft, s.faults[name] = &q[0], q[1:]
		}
		s.mu.Unlock()
		if ft != nil {
			writeAWSError(w, ft.status, ft.code, "injected "+ft.code)
			return
		}
		h(w, r, body)
	}
}

func writeAWSError(w http.ResponseWriter, status int, code, msg string) {
	type awsError struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Type      string   `xml:"Error>Type"`
		Code      string   `xml:"Error>Code"`
		Message   string   `xml:"Error>Message"`
		RequestID string   `xml:"RequestId"`
	}
	writeXML(w, status, awsError{Type: "Sender", Code: code, Message: msg, RequestID: "fake-request-id"})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", "fake-request-id")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

// sortKey orders names as Route53 does: by labels from the right.
func sortKey(name string) string {
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".")
}

func (s *Server) pageSizeFor(r *http.Request) int {
	n := s.pageSize
	if v, err := strconv.Atoi(r.URL.Query().Get("maxitems")); err == nil && v > 0 && v < n {
		n = v
	}
	return n
}

// pageFrom returns a list page of sorted items: up to n from the first whose
// key is at least from (from the start when from is empty), and the index of
// the item after the page, or -1 when the page ends the list.
func pageFrom[T any](items []T, key func(T) string, from string, n int) ([]T, int) {
	start := 0
	if from != "" {
		start = slices.IndexFunc(items, func(x T) bool { return key(x) >= from })
		if start < 0 {
			start = len(items)
		}
	}
	end := min(start+n, len(items))
	if end == len(items) {
		return items[start:end], -1
	}
	return items[start:end], end
}

func (s *Server) listZones(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	zones := slices.Clone(s.zones)
	zoneKey := func(z *zone) string { return sortKey(z.name) + " " + z.id }
	slices.SortStableFunc(zones, func(a, b *zone) int { return strings.Compare(zoneKey(a), zoneKey(b)) })
	q := r.URL.Query()
	from := ""
	if dns := q.Get("dnsname"); dns != "" {
		from = sortKey(fqdn(dns)) + " "
		if id := q.Get("hostedzoneid"); id != "" {
			from += "/hostedzone/" + id
		}
	} else if q.Get("hostedzoneid") != "" {
		writeAWSError(w, http.StatusBadRequest, "InvalidInput", "hostedzoneid needs dnsname")
		return
	}
	n := s.pageSizeFor(r)
	page, next := pageFrom(zones, zoneKey, from, n)
	type response struct {
		XMLName          xml.Name        `xml:"ListHostedZonesByNameResponse"`
		HostedZones      []xmlHostedZone `xml:"HostedZones>HostedZone"`
		DNSName          string          `xml:"DNSName,omitempty"`
		NextDNSName      string          `xml:"NextDNSName,omitempty"`
		NextHostedZoneID string          `xml:"NextHostedZoneId,omitempty"`
		xmlList
	}
	out := response{DNSName: q.Get("dnsname"), xmlList: xmlList{NS: route53NS, MaxItems: n}}
	for _, z := range page {
		out.HostedZones = append(out.HostedZones, xmlHostedZone{ID: z.id, Name: z.name, CallerReference: "ref-" + z.id, PrivateZone: z.private, RecordCount: len(z.sets)})
	}
	if next >= 0 {
		out.IsTruncated, out.NextDNSName, out.NextHostedZoneID = true, zones[next].name, strings.TrimPrefix(zones[next].id, "/hostedzone/")
	}
	writeXML(w, http.StatusOK, out)
}

func setKey(rs RecordSet) string {
	return sortKey(rs.Name) + " " + rs.Type + " " + rs.SetIdentifier
}

func sortSets(sets []RecordSet) {
	slices.SortStableFunc(sets, func(a, b RecordSet) int { return strings.Compare(setKey(a), setKey(b)) })
}

func (s *Server) listSets(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zone(r.PathValue("id"))
	if z == nil {
		writeAWSError(w, http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: "+r.PathValue("id"))
		return
	}
	sortSets(z.sets)
	q := r.URL.Query()
	from := ""
	if name := q.Get("name"); name != "" {
		from = sortKey(fqdn(name)) + " " + q.Get("type") + " " + q.Get("identifier")
	}
	n := s.pageSizeFor(r)
	page, next := pageFrom(z.sets, setKey, from, n)
	type response struct {
		XMLName              xml.Name   `xml:"ListResourceRecordSetsResponse"`
		Sets                 []xmlRRSet `xml:"ResourceRecordSets>ResourceRecordSet"`
		NextRecordName       string     `xml:"NextRecordName,omitempty"`
		NextRecordType       string     `xml:"NextRecordType,omitempty"`
		NextRecordIdentifier string     `xml:"NextRecordIdentifier,omitempty"`
		xmlList
	}
	out := response{xmlList: xmlList{NS: route53NS, MaxItems: n}}
	for _, rs := range page {
		out.Sets = append(out.Sets, toXML(rs))
	}
	if next >= 0 {
		rs := z.sets[next]
		out.IsTruncated, out.NextRecordName, out.NextRecordType, out.NextRecordIdentifier = true, rs.Name, rs.Type, rs.SetIdentifier
	}
	writeXML(w, http.StatusOK, out)
}

// changeSets validates a change batch like Route53 and applies it
// atomically, or answers InvalidChangeBatch in Route53's own format.
func (s *Server) changeSets(w http.ResponseWriter, r *http.Request, body []byte) {
	s.mu.Lock()
	hook := s.beforeChange
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zone(r.PathValue("id"))
	if z == nil {
		writeAWSError(w, http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: "+r.PathValue("id"))
		return
	}
	var req xmlChangeRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		writeAWSError(w, http.StatusBadRequest, "InvalidInput", "malformed request: "+err.Error())
		return
	}
	batch := Batch{Zone: r.PathValue("id"), Comment: req.Comment}
	for _, c := range req.Changes {
		batch.Changes = append(batch.Changes, c.Action+" "+fromXML(c.Set).String())
	}
	sets := slices.Clone(z.sets)
	var problems []string
	for _, c := range req.Changes {
		if p := validSet(c.Set, z.name); p != "" {
			problems = append(problems, p)
			continue
		}
		rs := fromXML(c.Set)
		where := fmt.Sprintf("[name='%s', type='%s', set-identifier='%s']", rs.Name, rs.Type, rs.SetIdentifier)
		rs.Name = fqdn(rs.Name)
		i := slices.IndexFunc(sets, func(o RecordSet) bool {
			return o.Name == rs.Name && o.Type == rs.Type && o.SetIdentifier == rs.SetIdentifier
		})
		conflict := slices.ContainsFunc(sets, func(o RecordSet) bool {
			return o.Name == rs.Name && o.Type != rs.Type && (o.Type == "CNAME" || rs.Type == "CNAME")
		})
		switch c.Action {
		case "CREATE", "UPSERT":
			switch {
			case conflict:
				problems = append(problems, fmt.Sprintf("RRSet of type %s with DNS name %s is not permitted because a conflicting RRSet of type CNAME with the same DNS name already exists", rs.Type, rs.Name))
			case i >= 0 && c.Action == "CREATE":
				problems = append(problems, "Tried to create resource record set "+where+" but it already exists")
			case i >= 0:
				sets[i] = rs
			default:
				sets = append(sets, rs)
			}
		case "DELETE":
			switch {
			case i < 0:
				problems = append(problems, "Tried to delete resource record set "+where+" but it was not found")
			case !sets[i].same(rs):
				problems = append(problems, "Tried to delete resource record set "+where+" but the values provided do not match the current values")
			default:
				sets = slices.Delete(sets, i, i+1)
			}
		default:
			problems = append(problems, "unknown action "+c.Action)
		}
	}
	if len(req.Changes) == 0 {
		problems = append(problems, "the change batch has no changes")
	}
	batch.Accepted = len(problems) == 0
	s.batches = append(s.batches, batch)
	if !batch.Accepted {
		type invalid struct {
			XMLName  xml.Name `xml:"InvalidChangeBatch"`
			NS       string   `xml:"xmlns,attr"`
			Messages []string `xml:"Messages>Message"`
		}
		writeXML(w, http.StatusBadRequest, invalid{NS: route53NS, Messages: problems})
		return
	}
	z.sets = sets
	s.nextChange++
	id := fmt.Sprintf("C%06dFAKE", s.nextChange)
	s.pending[id] = s.pendingPolls
	type response struct {
		XMLName    xml.Name      `xml:"ChangeResourceRecordSetsResponse"`
		NS         string        `xml:"xmlns,attr"`
		ChangeInfo xmlChangeInfo `xml:"ChangeInfo"`
	}
	writeXML(w, http.StatusOK, response{NS: route53NS, ChangeInfo: xmlChangeInfo{ID: "/change/" + id, Status: "PENDING",
		SubmittedAt: time.Now().UTC().Format(time.RFC3339), Comment: req.Comment}})
}

// validSet checks a record set like Route53 does, returning the problem.
func validSet(rs xmlRRSet, zone string) string {
	name := fqdn(rs.Name)
	if name != zone && !strings.HasSuffix(name, "."+zone) {
		return fmt.Sprintf("RRSet with DNS name %s is not permitted in zone %s", rs.Name, zone)
	}
	if rs.AliasTarget == nil && (rs.TTL == nil || len(rs.Records) == 0) {
		return fmt.Sprintf("Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none in Change with [Action=?, Name=%s, Type=%s, SetIdentifier=%s]", rs.Name, rs.Type, rs.SetIdentifier)
	}
	for _, r := range rs.Records {
		v := r.Value
		switch rs.Type {
		case "A":
			if ip, err := netip.ParseAddr(v); err != nil || !ip.Is4() {
				return fmt.Sprintf("Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address) encountered with '%s''", v)
			}
		case "TXT":
			if _, err := txtStrings(v); err != nil {
				return fmt.Sprintf("Invalid Resource Record: 'FATAL problem: InvalidCharacterString (Value should be enclosed in quotation marks) encountered with '%s''", v)
			}
		}
	}
	return ""
}

func (s *Server) getChange(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("id")
	left, ok := s.pending[id]
	if !ok {
		writeAWSError(w, http.StatusNotFound, "NoSuchChange", "A change with the specified change ID does not exist: "+id)
		return
	}
	status := "INSYNC"
	if left > 0 {
		status = "PENDING"
		s.pending[id] = left - 1
	}
	type response struct {
		XMLName    xml.Name      `xml:"GetChangeResponse"`
		NS         string        `xml:"xmlns,attr"`
		ChangeInfo xmlChangeInfo `xml:"ChangeInfo"`
	}
	writeXML(w, http.StatusOK, response{NS: route53NS, ChangeInfo: xmlChangeInfo{ID: "/change/" + id, Status: status,
		SubmittedAt: time.Now().UTC().Format(time.RFC3339)}})
}
