package schemas

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// registry is an srfake registry that counts GET /schemas/ids/ requests and can be made to
// fail them.
type registry struct {
	*srfake.Registry
	client *sr.Client
	byID   atomic.Int64                                     // requests for a schema by id
	fail   atomic.Pointer[func(w http.ResponseWriter) bool] // when set, answers instead of the registry
}

func newRegistry(t testing.TB) *registry {
	t.Helper()
	r := &registry{Registry: srfake.New()}
	t.Cleanup(r.Close)
	r.Intercept(func(w http.ResponseWriter, req *http.Request) bool {
		if strings.HasPrefix(req.URL.Path, "/schemas/ids/") {
			r.byID.Add(1)
		}
		if f := r.fail.Load(); f != nil {
			return (*f)(w)
		}
		return false
	})
	cl, err := sr.NewClient(sr.URLs(r.URL()))
	if err != nil {
		t.Fatal(err)
	}
	r.client = cl
	return r
}

func (r *registry) register(t testing.TB, subject string, s sr.Schema) int {
	t.Helper()
	id, _, err := r.RegisterSchema(subject, s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (r *registry) failWith(status int, body string) {
	f := func(w http.ResponseWriter) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		return true
	}
	r.fail.Store(&f)
}

func frame(t testing.TB, id int, schema string, native any) []byte {
	t.Helper()
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := (&sr.ConfluentHeader{}).AppendEncode(nil, id, nil)
	b, err = codec.BinaryFromNative(b, native)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantFlat(id int64) map[string]any {
	return map[string]any{
		"id":                  id,
		"interaction_id":      "int-18f3a2c4b1d-AB12CD",
		"first_name":          "Maria",
		"last_name":           "Garcia",
		"phone":               "+16175551234",
		"tier":                "Gold",
		"balance":             1250.75,
		"last_contact_reason": "billing",
		"account_pin":         "4821",
		"updated_at":          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"birth_date":          time.Date(1980, 5, 17, 0, 0, 0, 0, time.UTC),
		"visits":              int64(12),
	}
}

func TestRegistryDecode(t *testing.T) {
	r := newRegistry(t)
	id := r.register(t, "flat-value", sr.Schema{Schema: CustomerFlat})
	d := NewRegistryDecoder(r.client)
	ctx := context.Background()
	for i := range 3 {
		got, err := d.Decode(ctx, frame(t, id, CustomerFlat, flatNative(int64(i))))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantFlat(int64(i)), got); diff != "" {
			t.Errorf("decode %d mismatch (-want +got):\n%s", i, diff)
		}
	}
	if n := r.byID.Load(); n != 1 {
		t.Errorf("registry asked %d times for one id, want 1", n)
	}
	if v, err := d.Decode(ctx, nil); v != nil || err != nil {
		t.Errorf("tombstone: got (%v, %v), want (nil, nil)", v, err)
	}
}

func TestRegistryFramingErrors(t *testing.T) {
	r := newRegistry(t)
	id := r.register(t, "flat-value", sr.Schema{Schema: CustomerFlat})
	good := frame(t, id, CustomerFlat, flatNative(1))
	d := NewRegistryDecoder(r.client)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"one byte", []byte{0}, ErrBadFrame},
		{"four bytes", []byte{0, 0, 0, 1}, ErrBadFrame},
		{"wrong magic", append([]byte{1}, good[1:]...), ErrBadFrame},
		{"plain JSON", []byte(`{"id":1}`), ErrBadFrame},
		{"header only", good[:5], ErrDecode},
		{"truncated", good[:len(good)-2], ErrDecode},
		{"trailing", append(append([]byte{}, good...), 0), ErrDecode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Decode(context.Background(), tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if !IsPermanent(err) || IsTransient(err) {
				t.Errorf("error %v: IsPermanent=%v IsTransient=%v, want permanent", err, IsPermanent(err), IsTransient(err))
			}
		})
	}
	if got, err := SchemaID(good); err != nil || got != id {
		t.Errorf("SchemaID = %d, %v; want %d", got, err, id)
	}
}

func TestRegistryUnknownIDIsCached(t *testing.T) {
	r := newRegistry(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	d := NewRegistryDecoder(r.client, WithFailureTTL(30*time.Second), WithClock(func() time.Time { return *clock.Load() }))
	bad := frame(t, 999, CustomerFlat, flatNative(1))
	ctx := context.Background()

	for range 5 {
		_, err := d.Decode(ctx, bad)
		if !errors.Is(err, ErrUnknownSchema) || !IsPermanent(err) {
			t.Fatalf("error = %v, want permanent ErrUnknownSchema", err)
		}
	}
	if n := r.byID.Load(); n != 1 {
		t.Fatalf("registry asked %d times within the TTL, want 1", n)
	}

	// The id is registered meanwhile; after the TTL the decoder asks again and succeeds.
	r.SeedSchema("flat-value", 1, 999, sr.Schema{Schema: CustomerFlat})
	later := now.Add(29 * time.Second)
	clock.Store(&later)
	if _, err := d.Decode(ctx, bad); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("within TTL: error = %v, want cached ErrUnknownSchema", err)
	}
	expired := now.Add(31 * time.Second)
	clock.Store(&expired)
	if _, err := d.Decode(ctx, bad); err != nil {
		t.Fatalf("after TTL: %v", err)
	}
	if n := r.byID.Load(); n != 2 {
		t.Errorf("registry asked %d times, want 2", n)
	}
}

func TestRegistryOutageIsTransient(t *testing.T) {
	r := newRegistry(t)
	id := r.register(t, "flat-value", sr.Schema{Schema: CustomerFlat})
	d := NewRegistryDecoder(r.client)
	b := frame(t, id, CustomerFlat, flatNative(1))
	ctx := context.Background()

	outages := []struct {
		name   string
		status int
		body   string
	}{
		{"500", http.StatusInternalServerError, `{"error_code":50001,"message":"Error in backend datastore"}`},
		{"503 html", http.StatusServiceUnavailable, `<html>down</html>`},
		{"bare 404 from a proxy", http.StatusNotFound, `<html>no such path</html>`},
		{"401", http.StatusUnauthorized, `{"error_code":401,"message":"Unauthorized"}`},
	}
	for _, o := range outages {
		r.failWith(o.status, o.body)
		before := r.byID.Load()
		for range 2 {
			_, err := d.Decode(ctx, b)
			if !IsTransient(err) || IsPermanent(err) || !errors.Is(err, ErrRegistryUnavailable) {
				t.Fatalf("%s: error = %v, want transient", o.name, err)
			}
		}
		if n := r.byID.Load() - before; n != 2 {
			t.Errorf("%s: registry asked %d times for 2 decodes, want 2 (transient failures are not cached)", o.name, n)
		}
	}
	r.fail.Store(nil)
	if _, err := d.Decode(ctx, b); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestRegistryUnreachable(t *testing.T) {
	r := newRegistry(t)
	url := r.URL()
	r.Close()
	cl, err := sr.NewClient(sr.URLs(url), sr.BasicAuth("svc", "s3cr3t-token"))
	if err != nil {
		t.Fatal(err)
	}
	d := NewRegistryDecoder(cl)
	_, err = d.Decode(context.Background(), []byte{0, 0, 0, 0, 7, 2})
	if !IsTransient(err) {
		t.Fatalf("error = %v, want transient", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error leaks the registry password: %v", err)
	}
}

func TestRegistryFetchTimeout(t *testing.T) {
	r := newRegistry(t)
	release := make(chan struct{})
	defer close(release)
	block := func(w http.ResponseWriter) bool {
		<-release
		return false
	}
	r.fail.Store(&block)
	d := NewRegistryDecoder(r.client, WithFetchTimeout(20*time.Millisecond))
	_, err := d.Decode(context.Background(), []byte{0, 0, 0, 0, 1, 2})
	if !IsTransient(err) {
		t.Fatalf("error = %v, want transient", err)
	}
}

func TestRegistryCallerCancelled(t *testing.T) {
	r := newRegistry(t)
	d := NewRegistryDecoder(r.client)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := d.Decode(ctx, []byte{0, 0, 0, 0, 1, 2})
	if !errors.Is(err, context.Canceled) || IsTransient(err) || IsPermanent(err) {
		t.Fatalf("error = %v, want context.Canceled, neither transient nor permanent", err)
	}
}

func TestRegistryConcurrentFirstDecodesFetchOnce(t *testing.T) {
	const n = 16
	r := newRegistry(t)
	id := r.register(t, "flat-value", sr.Schema{Schema: CustomerFlat})
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	gate := func(w http.ResponseWriter) bool {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		return false
	}
	r.fail.Store(&gate)

	d := NewRegistryDecoder(r.client)
	var waiting sync.WaitGroup
	waiting.Add(n - 1)
	d.onWait = waiting.Done

	b := frame(t, id, CustomerFlat, flatNative(1))
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := d.Decode(context.Background(), b)
			errs <- err
		})
	}
	<-arrived      // one decode is fetching
	waiting.Wait() // the others wait for it
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := r.byID.Load(); got != 1 {
		t.Errorf("registry asked %d times for %d concurrent first decodes, want 1", got, n)
	}
}

func TestRegistryAbandonedFetchIsRetriedByWaiter(t *testing.T) {
	r := newRegistry(t)
	id := r.register(t, "flat-value", sr.Schema{Schema: CustomerFlat})
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	var first atomic.Bool
	gate := func(w http.ResponseWriter) bool {
		if first.CompareAndSwap(false, true) {
			arrived <- struct{}{}
			<-release
		}
		return false
	}
	r.fail.Store(&gate)
	d := NewRegistryDecoder(r.client)
	waiting := make(chan struct{})
	d.onWait = func() { close(waiting) }
	b := frame(t, id, CustomerFlat, flatNative(1))

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := d.Decode(leaderCtx, b)
		leaderErr <- err
	}()
	<-arrived
	waiterErr := make(chan error, 1)
	go func() {
		_, err := d.Decode(context.Background(), b)
		waiterErr <- err
	}()
	<-waiting
	cancelLeader()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader error = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-waiterErr; err != nil {
		t.Errorf("waiter error = %v, want it to fetch again and succeed", err)
	}
}

func TestRegistryUnsupportedSchema(t *testing.T) {
	r := newRegistry(t)
	proto := r.register(t, "p-value", sr.Schema{Type: sr.TypeProtobuf, Schema: `syntax = "proto3"; message M { string a = 1; }`})
	d := NewRegistryDecoder(r.client)
	for range 2 {
		_, err := d.Decode(context.Background(), []byte{0, 0, 0, 0, byte(proto), 2})
		if !errors.Is(err, ErrUnsupportedSchema) || !IsPermanent(err) {
			t.Fatalf("error = %v, want permanent ErrUnsupportedSchema", err)
		}
	}
	if n := r.byID.Load(); n != 1 {
		t.Errorf("registry asked %d times, want 1 (cached)", n)
	}
}

func TestRegistryReferences(t *testing.T) {
	r := newRegistry(t)
	address := `{"type": "record", "name": "Address", "namespace": "com.acme",
		"fields": [{"name": "city", "type": "string"}, {"name": "zip", "type": ["null", "string"]}]}`
	r.register(t, "com.acme.Address", sr.Schema{Schema: address})
	person := `{"type": "record", "name": "Person", "namespace": "com.acme", "fields": [
		{"name": "name", "type": "string"},
		{"name": "home", "type": "com.acme.Address"},
		{"name": "work", "type": ["null", "Address"]}]}`
	id := r.register(t, "person-value", sr.Schema{Schema: person, References: []sr.SchemaReference{
		{Name: "com.acme.Address", Subject: "com.acme.Address", Version: 1},
	}})

	// The writer's view: the same schema with the reference inlined.
	full := strings.Replace(person, `"type": "com.acme.Address"`, `"type": `+address, 1)
	native := map[string]any{
		"name": "Ana",
		"home": map[string]any{"city": "Lisbon", "zip": goavro.Union("string", "1000")},
		"work": goavro.Union("com.acme.Address", map[string]any{"city": "Porto", "zip": nil}),
	}
	d := NewRegistryDecoder(r.client)
	got, err := d.Decode(context.Background(), frame(t, id, full, native))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "Ana",
		"home": map[string]any{"city": "Lisbon", "zip": "1000"},
		"work": map[string]any{"city": "Porto", "zip": nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}
