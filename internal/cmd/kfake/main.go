// Command kfake runs franz-go's fake Kafka cluster (pkg/kfake) as a process of its own, so the
// chaos suite (internal/chaos) can stop a broker and start it again on the same port with the
// same data, as a real broker restarts, while the connector under test runs as another process.
//
//	kfake --listen 127.0.0.1:0 --data-dir DIR [--partitions 6] [--topic NAME]...
//
// It prints one listening address a line on stdout once it accepts connections, then serves
// until SIGTERM or SIGINT, when it saves its state to --data-dir (when set) and exits 0.
// It is a test tool: there is no authentication and topics are created on first use.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// listFlag is a repeatable flag whose values may also be comma-separated lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var listen, topics listFlag
	fs.Var(&listen, "listen", "host:port of a broker (repeatable or comma-separated: one broker each; port 0 picks one); default 127.0.0.1:0")
	fs.Var(&topics, "topic", "topic to create at start with --partitions partitions (repeatable)")
	dataDir := fs.String("data-dir", "", "directory the cluster's state is saved to and reloaded from, so a restart keeps topics, records and committed offsets")
	partitions := fs.Int("partitions", 6, "partitions of created and auto-created topics")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(listen) == 0 {
		listen = listFlag{"127.0.0.1:0"}
	}
	if *partitions < 1 {
		fmt.Fprintln(stderr, "kfake: --partitions must be at least 1")
		return 2
	}
	hosts := make(map[int]string) // kfake listens on 127.0.0.1:port; ListenFn puts the host back
	ports := make([]int, len(listen))
	for i, a := range listen {
		host, p, err := net.SplitHostPort(a)
		if err != nil {
			fmt.Fprintf(stderr, "kfake: --listen %q: %v\n", a, err)
			return 2
		}
		port, err := strconv.Atoi(p)
		if err != nil || port < 0 || port > 65535 {
			fmt.Fprintf(stderr, "kfake: --listen %q: bad port\n", a)
			return 2
		}
		if port == 0 && host != "127.0.0.1" && host != "" {
			fmt.Fprintf(stderr, "kfake: --listen %q: port 0 works only on 127.0.0.1\n", a)
			return 2
		}
		ports[i], hosts[port] = port, host
	}
	opts := []kfake.Opt{
		kfake.Ports(ports...),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, p, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			port, _ := strconv.Atoi(p)
			if h := hosts[port]; h != "" {
				address = net.JoinHostPort(h, p)
			}
			return net.Listen(network, address)
		}),
		kfake.DefaultNumPartitions(*partitions),
		kfake.AllowAutoTopicCreation(),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), topics...))
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	// Signals are caught before the cluster listens, so a stop right after the addresses are
	// printed still saves the state.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(stderr, "kfake: starting the cluster: %v\n", err)
		return 1
	}
	for _, a := range c.ListenAddrs() {
		fmt.Fprintln(stdout, a)
	}
	<-sigs
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Close() // with --data-dir, saves the state first
	}()
	select {
	case <-done:
		return 0
	case <-sigs:
		fmt.Fprintln(stderr, "kfake: second signal, exiting without saving")
		return 1
	}
}
