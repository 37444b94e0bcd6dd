package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// paced is what pace prints: when each stream's marked events arrived, and why each failed stream failed.
type paced struct {
	Streams int `json:"streams"`
	// Per stream that succeeded, the arrival of each marked event in ms since the first request was sent.
	ArrivalsMs [][]float64 `json:"arrivals_ms"`
	Failed     []string    `json:"failed"`
	Seconds    float64     `json:"seconds"`
}

// pace runs `streams` POSTs of `body` at once (its "{n}" replaced by each stream's number, so that every stream
// is a conversation of its own), started in a ramp of 50 every 10 ms rather than one burst of connects, and
// times every data: line containing `marker` as it is read. Each event is timed on its own, also when several
// arrive in one read: a gateway that hands two events over in one write delivers the second with no gap.
func pace(url, body, caFile, marker string, headers headerList, streams int) paced {
	c, err := client(caFile)
	if err != nil {
		return paced{Streams: streams, Failed: []string{err.Error()}}
	}
	transport := c.Transport.(*http.Transport)
	transport.DisableKeepAlives = true // one connection per stream, closed at its end, as the Python client did
	var (
		mu     sync.Mutex
		out    = paced{Streams: streams, ArrivalsMs: [][]float64{}, Failed: []string{}}
		wg     sync.WaitGroup
		marked = []byte(marker)
	)
	start := time.Now()
	for n := 0; n < streams; n++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			times, failure := paceOne(c, url, strings.ReplaceAll(body, "{n}", strconv.Itoa(n)), headers, marked)
			offsets := make([]float64, len(times))
			for i, at := range times {
				offsets[i] = float64(at.Sub(start).Microseconds()) / 1000
			}
			mu.Lock()
			defer mu.Unlock()
			if failure != "" {
				out.Failed = append(out.Failed, failure)
			} else {
				out.ArrivalsMs = append(out.ArrivalsMs, offsets)
			}
		}(n)
		if n%50 == 49 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	wg.Wait()
	out.Seconds = time.Since(start).Seconds()
	return out
}

// paceOne is one stream: when each of its marked events arrived, and why it failed ("" when it did not).
func paceOne(c *http.Client, url, body string, headers headerList, marker []byte) ([]time.Time, string) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return nil, err.Error()
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "no response: " + err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		code := ""
		if _, rest, ok := bytes.Cut(text, []byte(`"code":"`)); ok {
			code, _, _ = strings.Cut(string(rest), `"`)
		}
		return nil, strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, code))
	}
	lines := bufio.NewReaderSize(resp.Body, 1<<16)
	var arrivals []time.Time
	for {
		line, err := lines.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("data:")) && bytes.Contains(line, marker) {
			arrivals = append(arrivals, time.Now())
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			return arrivals, "broken body: " + err.Error()
		}
	}
	return arrivals, ""
}
