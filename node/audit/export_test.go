package audit

// Queued returns how many Update calls wait for a leader to take them.
func Queued(l *Log) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}
