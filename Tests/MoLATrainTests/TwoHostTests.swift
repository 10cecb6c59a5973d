import Foundation
import MoLAReport
import MoLATrain
import Testing

/// Two hosts on one machine: two network namespaces joined by a veth pair, each with its
/// own hostname (a UTS namespace), sharing the file system as cluster nodes share theirs.
/// mpirun runs on host A; OpenMPI reaches host B through an rsh agent script that enters
/// B's namespace instead of ssh-ing, so the ranks talk TCP over the veth pair alone.
final class TwoHosts {
    let nsA: String, nsB: String
    let addressA = "10.231.0.1", addressB = "10.231.0.2"
    let agent: String, agentLog: String

    init() throws {
        let id = "\(getpid() % 100_000)"
        nsA = "mola-\(id)-a"
        nsB = "mola-\(id)-b"
        agent = NSTemporaryDirectory() + "/mola-rsh-\(id).sh"
        agentLog = agent + ".log"
        let setup = """
            set -e
            ip netns add \(nsA); ip netns add \(nsB)
            ip link add mv\(id)a type veth peer name mv\(id)b
            ip link set mv\(id)a netns \(nsA); ip link set mv\(id)b netns \(nsB)
            ip -n \(nsA) addr add \(addressA)/24 dev mv\(id)a; ip -n \(nsB) addr add \(addressB)/24 dev mv\(id)b
            for ns in \(nsA) \(nsB); do ip -n $ns link set lo up; done
            ip -n \(nsA) link set mv\(id)a up; ip -n \(nsB) link set mv\(id)b up
            """
        let r = try run("bash", ["-c", setup])
        guard r.status == 0 else { throw SetupFailure(message: "cannot make the two hosts: \(r.stderr)") }
        // Called as ssh would be: [options] HOST COMMAND…; runs COMMAND on host B.
        try """
            #!/bin/sh
            while [ $# -gt 0 ]; do case "$1" in -*) shift;; *) break;; esac; done
            echo "$1" >> \(agentLog); shift
            exec ip netns exec \(nsB) unshare --uts /bin/sh -c "hostname host-b; $*"
            """.write(toFile: agent, atomically: true, encoding: .utf8)
        chmod(agent, 0o755)
    }

    struct SetupFailure: Error { var message: String }

    deinit {
        _ = try? run("bash", ["-c", "ip netns del \(nsA); ip netns del \(nsB)"])
        unlink(agent)
        unlink(agentLog)
    }

    /// `mpirun -np 2` on host A with one rank on each host, as a shell command.
    func mpirunCommand(_ args: [String]) -> String {
        let mpirun = "mpirun --allow-run-as-root --mca plm_rsh_agent \(agent) --mca btl self,tcp "
            + "--mca btl_tcp_if_include 10.231.0.0/24 --mca oob_tcp_if_include 10.231.0.0/24 "
            + "--host \(addressA):1,\(addressB):1 -np 2 "
            + ([executable("mola-train")] + args).map { "'\($0)'" }.joined(separator: " ")
        return "exec ip netns exec \(nsA) unshare --uts /bin/sh -c \"hostname host-a; exec \(mpirun.replacingOccurrences(of: "\"", with: "\\\""))\""
    }

    /// Hosts the agent was asked to start a daemon on.
    var agentHosts: [String] { ((try? String(contentsOfFile: agentLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
}

/// MPI ranks on two hosts: the same model as two ranks on one; a rank lost with its host
/// ends the job by name, and `--resume` finishes the run.
@Suite(.serialized, .enabled(if: geteuid() == 0, "makes network namespaces: needs root, as CI has"))
struct TwoHostTests {
    @Test func twoHostsTrainWhatOneHostTrains() throws {
        try DataParallelTests.requireMPI()
        let tmp = TempDir(), hosts = try TwoHosts()
        let extra = "sync_batchnorm: true"
        let one = TinyData.config(tmp, method: "mola-grad", steps: 8, evalEvery: 4, extra: extra, output: "one-host")
        let two = TinyData.config(tmp, method: "mola-grad", steps: 8, evalEvery: 4, extra: extra, output: "two-hosts")
        let r1 = try DataParallelTests.mpirun(2, ["run", one, "--quiet", "--set", "threads=1"])
        try #require(r1.status == 0, "\(r1.stdout)")
        let r2 = try run("bash", ["-c", hosts.mpirunCommand(["run", two, "--quiet", "--set", "threads=1"]) + " 2>&1"])
        try #require(r2.status == 0, "\(r2.stdout)")
        #expect(hosts.agentHosts == [hosts.addressB], "rank 1 was not started on host B: \(hosts.agentHosts)")
        let worst = try DataParallelTests.largestDifference(tmp.path + "/one-host", tmp.path + "/two-hosts")
        #expect(worst < 1e-4, "largest difference relative to the tensor's scale: \(worst)")
        let validations = metricsLines(tmp.path + "/two-hosts").filter { $0["val_average"] != nil }
        #expect(validations.count == 2 && validations.allSatisfy { ($0["ranks"] as? Int) == 2 }, "\(validations)")
    }

    @Test func lostHostEndsTheJobAndResumeFinishes() throws {
        try DataParallelTests.requireMPI()
        let tmp = TempDir(), hosts = try TwoHosts()
        let config = TinyData.config(tmp, method: "mola-grad", steps: 200, evalEvery: 5)
        let dir = tmp.path + "/runs/mola-grad"
        let job = Process(), out = Pipe()
        job.executableURL = URL(fileURLWithPath: "/bin/bash")
        job.arguments = ["-c", hosts.mpirunCommand(["run", config, "--quiet", "--set", "threads=1"])]
        job.standardOutput = out
        job.standardError = out
        try job.run()
        // Kill the rank on host B (rank 1: its environment says so) once a checkpoint exists.
        var victim: Int32?
        for _ in 0..<600 where victim == nil {
            Thread.sleep(forTimeInterval: 0.05)
            guard FileManager.default.fileExists(atPath: dir + "/checkpoints/latest/state.json") else { continue }
            let ps = try run("bash", ["-c", "for p in $(pgrep -f '\(config)'); do tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && echo $p; done"])
            victim = Int32(ps.stdout.split(separator: "\n").first ?? "")
        }
        let pid = try #require(victim, "the rank on host B was not found")
        kill(pid, SIGKILL)
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        job.waitUntilExit()
        #expect(job.terminationStatus != 0)
        // mpirun's own report: "process rank 1 with PID … on node 10.231.0.2 exited on signal 9".
        #expect(output.contains("process rank 1 with PID") && output.contains("on node \(hosts.addressB)"), "the error names neither the rank nor its host: \(output)")
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoints/latest/state.json"))) as! [String: Any]
        let step = state["step"] as! Int
        #expect(step > 0 && step < 200)
        let resumed = try run("bash", ["-c", hosts.mpirunCommand(["run", config, "--quiet", "--resume", "--set", "threads=1"]) + " 2>&1"])
        #expect(resumed.status == 0, "\(resumed.stdout)")
        #expect(try RunReport.read(dir).steps == 200)
    }
}
