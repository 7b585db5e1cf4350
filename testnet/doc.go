// Package testnet starts many real mimnode nodes in one process, on
// loopback, with temporary data directories: for integration tests, the demo
// federation (`mimnode testnet`) and the benchmarks.
//
// A test builds a network of a known shape, federates it and seeds it with
// real Smart Data Models entities:
//
//	net := testnet.New(t, testnet.Shape{Cities: 2, AgenciesPerCity: 2, Researchers: 1}).
//		Federate().
//		Seed()
//	aarhusEnv := net.Members[0].Node()
//
// Each city's agencies hold the data of their kind (environment: air quality,
// noise, weather; transport: traffic flow; parking; utilities: waste
// containers, street lights), placed inside the city's real bounding box.
//
// Faults are injected on demand: Stop (clean), Kill (connections drop
// without goodbye), Restart (same data directory, same peer ID),
// Partition/Heal (connection gater), and with Options.Shaping, Shape/Unshape
// (latency and bandwidth on the link between two members, applied to their
// TCP connections). The harness never sleeps a fixed time:
// WaitFor polls a condition until a deadline. With a TB (New), every fluent
// call fails the test on error; without one (Start), Err reports it.
//
// RunBench runs the benchmark scenarios of every issue on a testnet, each
// with a baseline measured in the same run, and Report.Markdown writes the
// report `mimnode bench` prints (the README's performance section).
package testnet
