#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// LSP's `processId`: the daemon exits when the client process that started it is gone.
enum ParentWatcher {
    static func exitWhenGone(processID: Int) {
        guard processID > 0 else { return }
        let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        timer.schedule(deadline: .now() + 1, repeating: 1)
        timer.setEventHandler {
            if kill(pid_t(processID), 0) != 0 && errno == ESRCH { exit(0) }
        }
        timer.resume()
        retained.append(timer)
    }

    nonisolated(unsafe) private static var retained: [DispatchSourceTimer] = []
}
