// Command loadclient streams one HTTP request and measures its server-sent events, for the benchmarks in
// benches/ (a Python client parsing SSE on the same 2-core machine competes with the server it measures).
//
// It sends one POST (or GET without a body), reads the response as SSE and prints one JSON line:
//
//	{"status":200,"ttfb_ms":1.2,"marker_ms":1.3,"events":50003,"bytes":9100000,"seconds":0.61}
//
// ttfb_ms is the time to the first body byte, marker_ms the time to the first `data:` line containing -marker
// (null when none did), events the number of `data:` lines, seconds the time from sending to the end of the body.
// With -streams N it runs N such requests at once instead (each body's "{n}" replaced by the stream's number) and
// prints one JSON line for all of them: "arrivals_ms", per stream that succeeded the time each data: line
// containing -marker was read (ms since the start), and "failed", one entry per stream that did not end with a
// 200 and a complete body (its status and error code, or the error). See pace.go.
//
// Standard library only: no module download is needed to build it.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

type result struct {
	Status   int      `json:"status"`
	TTFBms   float64  `json:"ttfb_ms"`
	MarkerMs *float64 `json:"marker_ms"`
	Events   int      `json:"events"`
	Bytes    int64    `json:"bytes"`
	Seconds  float64  `json:"seconds"`
	Error    string   `json:"error,omitempty"`
}

// firstByteReader notes when the first byte of the body arrived and counts the bytes.
type firstByteReader struct {
	body  io.Reader
	first time.Time
	bytes int64
}

func (r *firstByteReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if n > 0 && r.first.IsZero() {
		r.first = time.Now()
	}
	r.bytes += int64(n)
	return n, err
}

func client(caFile string) (*http.Client, error) {
	tlsConfig := &tls.Config{}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", caFile)
		}
		tlsConfig.RootCAs = pool
	}
	transport := &http.Transport{
		TLSClientConfig:    tlsConfig,
		DisableCompression: true, // the bytes as the server sent them, like a raw read
		// HTTP/1.1 only, as the Python clients of the benches speak it.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return &http.Client{Transport: transport}, nil
}

func run(url, method, body, caFile, marker string, headers headerList) result {
	c, err := client(caFile)
	if err != nil {
		return result{Error: err.Error()}
	}
	var payload io.Reader
	if body != "" {
		payload = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, payload)
	if err != nil {
		return result{Error: err.Error()}
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return result{Error: "a header is NAME: VALUE, got " + h}
		}
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return result{Error: err.Error()}
	}
	defer resp.Body.Close()
	counted := &firstByteReader{body: resp.Body}
	lines := bufio.NewReaderSize(counted, 1<<16)
	out := result{Status: resp.StatusCode}
	markerBytes, dataPrefix := []byte(marker), []byte("data:")
	for {
		line, err := lines.ReadSlice('\n')
		if err == bufio.ErrBufferFull { // a line longer than the buffer: only its start matters here
			if bytes.HasPrefix(line, dataPrefix) {
				out.Events++
			}
			for err == bufio.ErrBufferFull {
				_, err = lines.ReadSlice('\n')
			}
		} else if bytes.HasPrefix(line, dataPrefix) {
			out.Events++
			if out.MarkerMs == nil && marker != "" && bytes.Contains(line, markerBytes) {
				ms := float64(time.Since(start).Microseconds()) / 1000
				out.MarkerMs = &ms
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			out.Error = err.Error()
			break
		}
	}
	out.Seconds = time.Since(start).Seconds()
	out.Bytes = counted.bytes
	if !counted.first.IsZero() {
		out.TTFBms = float64(counted.first.Sub(start).Microseconds()) / 1000
	}
	return out
}

func main() {
	var headers headerList
	url := flag.String("url", "", "the URL to request")
	method := flag.String("method", "POST", "the HTTP method")
	body := flag.String("body", "", "the request body; '-' reads it from stdin")
	caFile := flag.String("cafile", "", "a PEM file of CA certificates to trust (https)")
	marker := flag.String("marker", "", "time the first data: line containing this string")
	flag.Var(&headers, "header", "a request header, 'Name: value' (repeatable)")
	streams := flag.Int("streams", 0, "run this many requests at once and print their marker gaps (pace mode)")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "loadclient: -url is required")
		os.Exit(2)
	}
	if *body == "-" {
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadclient: reading the body from stdin:", err)
			os.Exit(2)
		}
		*body = string(data)
	}
	if *streams > 0 {
		paced := pace(*url, *body, *caFile, *marker, headers, *streams)
		encoded, _ := json.Marshal(paced)
		fmt.Println(string(encoded))
		return
	}
	out := run(*url, *method, *body, *caFile, *marker, headers)
	encoded, _ := json.Marshal(out)
	fmt.Println(string(encoded))
	if out.Error != "" {
		os.Exit(1)
	}
}
