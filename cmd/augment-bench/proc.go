package main

import (
	"bufio"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cpuTime is the process's user plus system CPU time so far (every goroutine: the connector,
// and kfake and the simulator, which share the process).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatusKB reads a "Name:   123 kB" line of /proc/self/status; -1 when unavailable.
func procStatusKB(name string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			v, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return v
		}
	}
	return -1
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux: clear_refs 5), so the
// peak of one phase can be read; it reports whether that worked.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// mallocs is the number of heap allocations so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// heapSampler samples the live heap (objects) and the RSS every interval, keeping the peaks,
// without stopping the world.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	peakHeap uint64
	peakRSS  int64  // kB
	extra    func() // sampled with the others, for scenario gauges
}

func startHeapSampler(interval time.Duration, extra func()) *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{}), extra: extra}
	go func() {
		defer close(h.done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			metrics.Read(s)
			rss := procStatusKB("VmRSS")
			h.mu.Lock()
			if v := s[0].Value.Uint64(); v > h.peakHeap {
				h.peakHeap = v
			}
			if rss > h.peakRSS {
				h.peakRSS = rss
			}
			h.mu.Unlock()
			if h.extra != nil {
				h.extra()
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// Stop ends sampling and returns the peaks: live heap bytes and sampled RSS in kB.
func (h *heapSampler) Stop() (heap uint64, rssKB int64) {
	close(h.stop)
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peakHeap, h.peakRSS
}
