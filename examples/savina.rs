//! The Savina actor micro-benchmarks (Imam & Sarkar, AGERE 2014), plus Skynet: the suite
//! actor runtimes are compared on, each run on one hyperion node and, with `erl` on the
//! `PATH`, as an Erlang twin in the same run (the same actors, messages and sizes), with
//! the ratio printed (Erlang's time / hyperion's: above 1, hyperion is faster).
//!
//! ```text
//! cargo run --release --example savina -- all         # every benchmark, then a table
//! cargo run --release --example savina -- pingpong    # one of them
//! cargo run --release --example savina -- list        # their names and sizes
//! ```
//!
//! Each figure is the best of three runs. A hyperion node runs its processes on one
//! thread; the Erlang VM runs its default schedulers (one per core).

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hyperion::{Node, Process, ProcessId};
use serde::{Deserialize, Serialize};

/// Runs of each side; the best is the figure.
const RUNS: usize = 3;

/// One benchmark: its name, what it measures, its sizes (passed to the Erlang twin as
/// they are), and the hyperion side.
struct Benchmark {
    name: &'static str,
    what: &'static str,
    sizes: &'static [u64],
    /// What one run does, in the unit of the rate printed (e.g. round trips).
    work: fn(&[u64]) -> (f64, &'static str),
    run: fn(&Node, &[u64]) -> Duration,
}

const BENCHMARKS: &[Benchmark] = &[
    Benchmark {
        name: "pingpong",
        what: "two processes, N round trips",
        sizes: &[1_000_000],
        work: |s| (s[0] as f64, "round trips"),
        run: pingpong,
    },
    Benchmark {
        name: "threadring",
        what: "a ring of N processes passing one token H hops",
        sizes: &[1_000, 2_000_000],
        work: |s| (s[1] as f64, "hops"),
        run: threadring,
    },
    Benchmark {
        name: "counting",
        what: "N increments sent to one counter, then its value asked",
        sizes: &[1_000_000],
        work: |s| (s[0] as f64, "msgs"),
        run: counting,
    },
    Benchmark {
        name: "fjthrput",
        what: "fork-join throughput: N messages to each of A workers",
        sizes: &[60, 10_000],
        work: |s| ((s[0] * s[1]) as f64, "msgs"),
        run: fork_join_throughput,
    },
    Benchmark {
        name: "fjcreate",
        what: "fork-join creation: N processes, one message each",
        sizes: &[200_000],
        work: |s| (s[0] as f64, "processes"),
        run: fork_join_creation,
    },
    Benchmark {
        name: "fib",
        what: "Fibonacci(N), a process per call",
        sizes: &[27],
        work: |s| (fib_calls(s[0]) as f64, "processes"),
        run: fibonacci,
    },
    Benchmark {
        name: "chameneos",
        what: "C chameneos meeting N times through one mall",
        sizes: &[100, 200_000],
        work: |s| (s[1] as f64, "meetings"),
        run: chameneos,
    },
    Benchmark {
        name: "big",
        what: "N processes each pinging random others M times",
        sizes: &[120, 5_000],
        work: |s| ((2 * s[0] * s[1]) as f64, "msgs"),
        run: big,
    },
    Benchmark {
        name: "skynet",
        what: "a 10-ary tree of N leaf processes summing their ids",
        sizes: &[1_000_000],
        work: |s| (skynet_processes(s[0]) as f64, "processes"),
        run: skynet_bench,
    },
];

fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "list".to_string());
    let chosen: Vec<&Benchmark> = match name.as_str() {
        "all" => BENCHMARKS.iter().collect(),
        "list" => {
            for bench in BENCHMARKS {
                println!("{:<11} {} {:?}", bench.name, bench.what, bench.sizes);
            }
            println!("all         every one of them, then a table");
            return;
        }
        name => match BENCHMARKS.iter().find(|bench| bench.name == name) {
            Some(bench) => vec![bench],
            None => {
                eprintln!("no benchmark named {name:?}; `list` shows them");
                std::process::exit(2);
            }
        },
    };
    let node = Node::new().expect("start a node");
    let erlang = ErlangTwin::compile();
    if erlang.is_none() {
        println!("(no Erlang twin: `erl` did not run or compile it; hyperion alone)");
    }
    let mut rows = Vec::new();
    for bench in chosen {
        let ours = (0..RUNS)
            .map(|_| (bench.run)(&node, bench.sizes))
            .min()
            .expect("at least one run");
        let theirs = erlang.as_ref().and_then(|twin| twin.run(bench));
        let (work, unit) = (bench.work)(bench.sizes);
        let rate = |elapsed: Duration| format_rate(work / elapsed.as_secs_f64(), unit);
        let erlang_text = match theirs {
            Some(theirs) => format!(
                " | Erlang {:>9.1} ms ({}) | ratio {:.2}",
                millis(theirs),
                rate(theirs),
                theirs.as_secs_f64() / ours.as_secs_f64()
            ),
            None => String::new(),
        };
        println!(
            "{:<11} {:?}: hyperion {:>9.1} ms ({}){erlang_text}",
            bench.name,
            bench.sizes,
            millis(ours),
            rate(ours)
        );
        rows.push((bench, ours, theirs));
    }
    if rows.len() > 1 {
        println!();
        println!("| benchmark | sizes | hyperion | Erlang/OTP | ratio |");
        println!("| --- | --- | --- | --- | --- |");
        for (bench, ours, theirs) in rows {
            let (work, unit) = (bench.work)(bench.sizes);
            let (erlang_text, ratio) = match theirs {
                Some(theirs) => (
                    format!(
                        "{:.1} ms ({})",
                        millis(theirs),
                        format_rate(work / theirs.as_secs_f64(), unit)
                    ),
                    format!("{:.2}", theirs.as_secs_f64() / ours.as_secs_f64()),
                ),
                None => ("-".to_string(), "-".to_string()),
            };
            println!(
                "| {} ({}) | {:?} | {:.1} ms ({}) | {erlang_text} | {ratio} |",
                bench.name,
                bench.what,
                bench.sizes,
                millis(ours),
                format_rate(work / ours.as_secs_f64(), unit)
            );
        }
    }
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e3
}

fn format_rate(per_second: f64, unit: &str) -> String {
    if per_second >= 1e6 {
        format!("{:.2} M {unit}/s", per_second / 1e6)
    } else {
        format!("{:.0} k {unit}/s", per_second / 1e3)
    }
}

/// Times `body` as one process of `node`, from its first line to its result.
fn timed<F, Fut>(node: &Node, body: F) -> Duration
where
    F: FnOnce(Process) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    node.run(move |p| async move {
        let started = Instant::now();
        body(p).await;
        started.elapsed()
    })
    .expect("benchmark process")
}

// ----- PingPong -----

#[derive(Serialize, Deserialize)]
enum PingPong {
    Ping(ProcessId),
    Pong,
    Stop,
}

fn pingpong(node: &Node, sizes: &[u64]) -> Duration {
    let round_trips = sizes[0];
    timed(node, move |p| async move {
        let pong = p.spawn_local(|q| async move {
            loop {
                match q.expect::<PingPong>().await {
                    PingPong::Ping(from) => q.send(from, PingPong::Pong),
                    PingPong::Pong => unreachable!("only the pinger gets pongs"),
                    PingPong::Stop => return,
                }
            }
        });
        let me = p.self_pid();
        for _ in 0..round_trips {
            p.send(pong, PingPong::Ping(me));
            let PingPong::Pong = p.expect::<PingPong>().await else {
                unreachable!("only pongs come back")
            };
        }
        p.send(pong, PingPong::Stop);
    })
}

// ----- ThreadRing -----

#[derive(Serialize, Deserialize)]
enum Ring {
    Next(ProcessId),
    /// The token, with the hops still to go.
    Token(u64),
    Stop,
}

fn threadring(node: &Node, sizes: &[u64]) -> Duration {
    let (members, hops) = (sizes[0], sizes[1]);
    timed(node, move |p| async move {
        let main = p.self_pid();
        let ring: Vec<ProcessId> = (0..members)
            .map(|_| {
                p.spawn_local(move |m| async move {
                    let mut next = None;
                    loop {
                        match m.expect::<Ring>().await {
                            Ring::Next(pid) => next = Some(pid),
                            Ring::Token(0) => m.send(main, 0u64),
                            Ring::Token(left) => {
                                m.send(next.expect("told first"), Ring::Token(left - 1))
                            }
                            Ring::Stop => return,
                        }
                    }
                })
            })
            .collect();
        for (i, pid) in ring.iter().enumerate() {
            p.send(*pid, Ring::Next(ring[(i + 1) % ring.len()]));
        }
        p.send(ring[0], Ring::Token(hops));
        let _done: u64 = p.expect().await;
        for pid in ring {
            p.send(pid, Ring::Stop);
        }
    })
}

// ----- Counting -----

#[derive(Serialize, Deserialize)]
enum Counter {
    Increment,
    Retrieve(ProcessId),
}

fn counting(node: &Node, sizes: &[u64]) -> Duration {
    let increments = sizes[0];
    timed(node, move |p| async move {
        let counter = p.spawn_local(|c| async move {
            let mut count = 0u64;
            loop {
                match c.expect::<Counter>().await {
                    Counter::Increment => count += 1,
                    Counter::Retrieve(from) => return c.send(from, count),
                }
            }
        });
        for _ in 0..increments {
            p.send(counter, Counter::Increment);
        }
        p.send(counter, Counter::Retrieve(p.self_pid()));
        assert_eq!(p.expect::<u64>().await, increments);
    })
}

// ----- Fork-Join -----

/// Savina's per-message work in the fork-join benchmarks, a little floating point.
fn fork_join_work(x: u64) -> f64 {
    (x as f64).sqrt().sin()
}

fn fork_join_throughput(node: &Node, sizes: &[u64]) -> Duration {
    let (workers, messages) = (sizes[0], sizes[1]);
    timed(node, move |p| async move {
        let main = p.self_pid();
        let pool: Vec<ProcessId> = (0..workers)
            .map(|_| {
                p.spawn_local(move |w| async move {
                    let mut sum = 0.0;
                    for _ in 0..messages {
                        sum += fork_join_work(w.expect::<u64>().await);
                    }
                    w.send(main, sum);
                })
            })
            .collect();
        for k in 0..messages {
            for worker in &pool {
                p.send(*worker, k);
            }
        }
        for _ in 0..workers {
            let _: f64 = p.expect().await;
        }
    })
}

fn fork_join_creation(node: &Node, sizes: &[u64]) -> Duration {
    let processes = sizes[0];
    timed(node, move |p| async move {
        let main = p.self_pid();
        for k in 0..processes {
            let worker = p.spawn_local(move |w| async move {
                let x = w.expect::<u64>().await;
                w.send(main, fork_join_work(x));
            });
            p.send(worker, k);
        }
        for _ in 0..processes {
            let _: f64 = p.expect().await;
        }
    })
}

// ----- Fibonacci -----

/// Processes (calls) of the naive recursion for `n`, with fib(1) = fib(2) = 1.
fn fib_calls(n: u64) -> u64 {
    if n <= 2 {
        1
    } else {
        1 + fib_calls(n - 1) + fib_calls(n - 2)
    }
}

async fn fib_process(p: Process, parent: ProcessId, n: u64) {
    if n <= 2 {
        return p.send(parent, 1u64);
    }
    let me = p.self_pid();
    p.spawn_local(move |c| fib_process(c, me, n - 1));
    p.spawn_local(move |c| fib_process(c, me, n - 2));
    let sum = p.expect::<u64>().await + p.expect::<u64>().await;
    p.send(parent, sum);
}

fn fibonacci(node: &Node, sizes: &[u64]) -> Duration {
    let n = sizes[0];
    timed(node, move |p| async move {
        let me = p.self_pid();
        p.spawn_local(move |c| fib_process(c, me, n));
        let result: u64 = p.expect().await;
        assert_eq!(result, (1..n).fold((0u64, 1u64), |(a, b), _| (b, a + b)).1);
    })
}

// ----- Chameneos -----

#[derive(Serialize, Deserialize)]
enum Chameneo {
    /// Met this chameneo of this colour (sent by the mall to the second of a pair).
    Meet(ProcessId, u8),
    /// Take this colour (sent by the partner).
    Change(u8),
    Exit,
}

#[derive(Serialize, Deserialize)]
enum Mall {
    Meet(ProcessId, u8),
    /// A chameneo leaves after this many meetings.
    Done(u64),
}

fn complement(mine: u8, other: u8) -> u8 {
    if mine == other {
        mine
    } else {
        3 - mine - other
    }
}

fn chameneos(node: &Node, sizes: &[u64]) -> Duration {
    let (count, meetings) = (sizes[0], sizes[1]);
    timed(node, move |p| async move {
        let main = p.self_pid();
        let mall = p.spawn_local(move |m| async move {
            let (mut left, mut waiting, mut active, mut total) = (meetings, None, count, 0);
            loop {
                match m.expect::<Mall>().await {
                    Mall::Meet(from, _) if left == 0 => {
                        m.send(from, Chameneo::Exit);
                        if let Some((other, _)) = waiting.take() {
                            m.send(other, Chameneo::Exit);
                        }
                    }
                    Mall::Meet(from, colour) => match waiting.take() {
                        None => waiting = Some((from, colour)),
                        Some((other, other_colour)) => {
                            m.send(from, Chameneo::Meet(other, other_colour));
                            left -= 1;
                        }
                    },
                    Mall::Done(met) => {
                        total += met;
                        active -= 1;
                        if active == 0 {
                            return m.send(main, total);
                        }
                    }
                }
            }
        });
        for i in 0..count {
            p.spawn_local(move |c| async move {
                let (me, mut colour, mut met) = (c.self_pid(), (i % 3) as u8, 0u64);
                c.send(mall, Mall::Meet(me, colour));
                loop {
                    match c.expect::<Chameneo>().await {
                        Chameneo::Meet(other, other_colour) => {
                            colour = complement(colour, other_colour);
                            c.send(other, Chameneo::Change(colour));
                        }
                        Chameneo::Change(new) => colour = new,
                        Chameneo::Exit => return c.send(mall, Mall::Done(met)),
                    }
                    met += 1;
                    c.send(mall, Mall::Meet(me, colour));
                }
            });
        }
        assert_eq!(p.expect::<u64>().await, 2 * meetings);
    })
}

// ----- Big -----

#[derive(Serialize, Deserialize)]
enum Big {
    Neighbours(Vec<ProcessId>),
    Ping(ProcessId),
    Pong,
    Stop,
}

fn big(node: &Node, sizes: &[u64]) -> Duration {
    let (count, pings) = (sizes[0], sizes[1]);
    timed(node, move |p| async move {
        let main = p.self_pid();
        let members: Vec<ProcessId> = (0..count)
            .map(|_| {
                p.spawn_local(move |b| async move {
                    let me = b.self_pid();
                    let Big::Neighbours(neighbours) = b.expect::<Big>().await else {
                        unreachable!("told its neighbours first")
                    };
                    let ping = |b: &Process| {
                        let to = neighbours[(b.random_u64() % neighbours.len() as u64) as usize];
                        b.send(to, Big::Ping(me));
                    };
                    ping(&b);
                    let mut sent = 1;
                    loop {
                        match b.expect::<Big>().await {
                            Big::Ping(from) => b.send(from, Big::Pong),
                            Big::Pong if sent == pings => b.send(main, me),
                            Big::Pong => {
                                ping(&b);
                                sent += 1;
                            }
                            Big::Stop => return,
                            Big::Neighbours(_) => unreachable!("told once"),
                        }
                    }
                })
            })
            .collect();
        for member in &members {
            p.send(*member, Big::Neighbours(members.clone()));
        }
        for _ in 0..count {
            let _: ProcessId = p.expect().await;
        }
        for member in members {
            p.send(member, Big::Stop);
        }
    })
}

// ----- Skynet -----

/// Processes in the tree over `leaves` leaves.
fn skynet_processes(leaves: u64) -> u64 {
    if leaves <= 1 {
        1
    } else {
        1 + 10 * skynet_processes(leaves / 10)
    }
}

async fn skynet(p: Process, parent: ProcessId, id: u64, size: u64) {
    if size == 1 {
        return p.send(parent, id);
    }
    let (me, child) = (p.self_pid(), size / 10);
    for i in 0..10 {
        p.spawn_local(move |c| skynet(c, me, id + i * child, child));
    }
    let mut sum = 0u64;
    for _ in 0..10 {
        sum += p.expect::<u64>().await;
    }
    p.send(parent, sum);
}

fn skynet_bench(node: &Node, sizes: &[u64]) -> Duration {
    let leaves = sizes[0];
    timed(node, move |p| async move {
        let me = p.self_pid();
        p.spawn_local(move |c| skynet(c, me, 0, leaves));
        assert_eq!(p.expect::<u64>().await, leaves * (leaves - 1) / 2);
    })
}

// ----- The Erlang twins -----

/// The same benchmarks in Erlang, compiled (the shell's `-eval` would interpret funs).
/// `run(Name, Sizes)` prints the best of three runs in nanoseconds.
const ERLANG_TWIN: &str = r#"
-module(savina_twin).
-export([run/2]).

run(Name, Sizes) ->
    Best = lists:min([timed(Name, Sizes) || _ <- [1, 2, 3]]),
    io:format("~p~n", [Best]).

timed(Name, Sizes) ->
    T0 = erlang:monotonic_time(nanosecond),
    ok = bench(Name, Sizes),
    erlang:monotonic_time(nanosecond) - T0.

send_n(_, _, 0) -> ok;
send_n(To, Message, K) -> To ! Message, send_n(To, Message, K - 1).

wait_n(_, 0) -> ok;
wait_n(Tag, K) -> receive {Tag, _} -> wait_n(Tag, K - 1) end.

work(X) -> math:sin(math:sqrt(X)).

bench(pingpong, [N]) ->
    Pong = spawn(fun pong/0),
    ping(Pong, N),
    Pong ! stop,
    ok;
bench(threadring, [N, Hops]) ->
    Main = self(),
    Ring = [spawn(fun() -> receive {next, Next} -> ring(Next, Main) end end)
            || _ <- lists:seq(1, N)],
    [P ! {next, Next} || {P, Next} <- lists:zip(Ring, tl(Ring) ++ [hd(Ring)])],
    hd(Ring) ! {token, Hops},
    receive done -> ok end,
    [P ! stop || P <- Ring],
    ok;
bench(counting, [N]) ->
    Counter = spawn(fun() -> counter(0) end),
    send_n(Counter, increment, N),
    Counter ! {retrieve, self()},
    receive {count, N} -> ok end;
bench(fjthrput, [A, N]) ->
    Main = self(),
    Pool = [spawn(fun() -> fj_worker(Main, N, 0.0) end) || _ <- lists:seq(1, A)],
    fj_send(Pool, 0, N),
    wait_n(fjdone, A);
bench(fjcreate, [N]) ->
    fj_create(self(), 0, N),
    wait_n(fjdone, N);
bench(fib, [N]) ->
    Main = self(),
    spawn(fun() -> fib(Main, N) end),
    receive {fib, _} -> ok end;
bench(chameneos, [C, N]) ->
    Main = self(),
    Mall = spawn(fun() -> mall(Main, N, none, C, 0) end),
    [spawn(fun() -> Mall ! {meet, self(), I rem 3}, chameneo(Mall, I rem 3, 0) end)
     || I <- lists:seq(0, C - 1)],
    Met = 2 * N,
    receive {meetings, Met} -> ok end;
bench(big, [N, M]) ->
    Main = self(),
    Members = [spawn(fun() -> receive {neighbours, Ns} -> big_start(Main, list_to_tuple(Ns), M) end end)
               || _ <- lists:seq(1, N)],
    [P ! {neighbours, Members} || P <- Members],
    wait_n(bigdone, N),
    [P ! stop || P <- Members],
    ok;
bench(skynet, [Leaves]) ->
    Main = self(),
    spawn(fun() -> skynet(Main, 0, Leaves) end),
    Sum = Leaves * (Leaves - 1) div 2,
    receive {sky, Sum} -> ok end.

ping(_, 0) -> ok;
ping(Pong, K) -> Pong ! {ping, self()}, receive pong -> ping(Pong, K - 1) end.
pong() -> receive {ping, From} -> From ! pong, pong(); stop -> ok end.

ring(Next, Main) ->
    receive
        {token, 0} -> Main ! done, ring(Next, Main);
        {token, K} -> Next ! {token, K - 1}, ring(Next, Main);
        stop -> ok
    end.

counter(Count) ->
    receive
        increment -> counter(Count + 1);
        {retrieve, From} -> From ! {count, Count}
    end.

fj_send(_, N, N) -> ok;
fj_send(Pool, K, N) -> [W ! {fj, K} || W <- Pool], fj_send(Pool, K + 1, N).
fj_worker(Main, 0, Sum) -> Main ! {fjdone, Sum};
fj_worker(Main, K, Sum) -> receive {fj, X} -> fj_worker(Main, K - 1, Sum + work(X)) end.
fj_create(_, N, N) -> ok;
fj_create(Main, K, N) ->
    W = spawn(fun() -> receive {fj, X} -> Main ! {fjdone, work(X)} end end),
    W ! {fj, K},
    fj_create(Main, K + 1, N).

fib(Parent, N) when N =< 2 -> Parent ! {fib, 1};
fib(Parent, N) ->
    Me = self(),
    spawn(fun() -> fib(Me, N - 1) end),
    spawn(fun() -> fib(Me, N - 2) end),
    receive {fib, A} -> receive {fib, B} -> Parent ! {fib, A + B} end end.

complement(C, C) -> C;
complement(A, B) -> 3 - A - B.
chameneo(Mall, Colour, Met) ->
    receive
        {meet, Other, OtherColour} ->
            New = complement(Colour, OtherColour),
            Other ! {change, New},
            Mall ! {meet, self(), New},
            chameneo(Mall, New, Met + 1);
        {change, New} ->
            Mall ! {meet, self(), New},
            chameneo(Mall, New, Met + 1);
        exit -> Mall ! {done, Met}
    end.
mall(Main, Left, Waiting, Active, Total) ->
    receive
        {meet, From, _} when Left =:= 0 ->
            From ! exit,
            case Waiting of none -> ok; {Other, _} -> Other ! exit end,
            mall(Main, 0, none, Active, Total);
        {meet, From, Colour} ->
            case Waiting of
                none -> mall(Main, Left, {From, Colour}, Active, Total);
                {Other, OtherColour} ->
                    From ! {meet, Other, OtherColour},
                    mall(Main, Left - 1, none, Active, Total)
            end;
        {done, Met} when Active =:= 1 -> Main ! {meetings, Total + Met};
        {done, Met} -> mall(Main, Left, Waiting, Active - 1, Total + Met)
    end.

big_ping(Ns) -> element(rand:uniform(tuple_size(Ns)), Ns) ! {ping, self()}.
big_start(Main, Ns, M) -> big_ping(Ns), big(Main, Ns, M, 1).
big(Main, Ns, M, Sent) ->
    receive
        {ping, From} -> From ! pong, big(Main, Ns, M, Sent);
        pong when Sent =:= M -> Main ! {bigdone, self()}, big(Main, Ns, M, Sent);
        pong -> big_ping(Ns), big(Main, Ns, M, Sent + 1);
        stop -> ok
    end.

skynet(Parent, Id, 1) -> Parent ! {sky, Id};
skynet(Parent, Id, Size) ->
    Me = self(),
    Child = Size div 10,
    [spawn(fun() -> skynet(Me, Id + I * Child, Child) end) || I <- lists:seq(0, 9)],
    Parent ! {sky, sky_sum(10, 0)}.
sky_sum(0, Sum) -> Sum;
sky_sum(K, Sum) -> receive {sky, X} -> sky_sum(K - 1, Sum + X) end.
"#;

/// The compiled Erlang module, in a temporary directory removed on drop.
struct ErlangTwin {
    dir: PathBuf,
}

impl ErlangTwin {
    /// Compiles the twin, if `erl` runs here.
    fn compile() -> Option<ErlangTwin> {
        let dir = std::env::temp_dir().join(format!("hyperion-savina-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let twin = ErlangTwin { dir };
        std::fs::write(twin.dir.join("savina_twin.erl"), ERLANG_TWIN).ok()?;
        let dir_text = twin.dir.to_str()?;
        let program = format!(
            "{{ok, _}} = compile:file(\"{dir_text}/savina_twin\", [{{outdir, \"{dir_text}\"}}]), halt()."
        );
        let status = std::process::Command::new("erl")
            .args(["-noshell", "-eval", &program])
            .status()
            .ok()?;
        status.success().then_some(twin)
    }

    /// The best of three runs of `bench`'s twin.
    fn run(&self, bench: &Benchmark) -> Option<Duration> {
        let sizes: Vec<String> = bench.sizes.iter().map(u64::to_string).collect();
        let program = format!(
            "savina_twin:run({}, [{}]), halt().",
            bench.name,
            sizes.join(", ")
        );
        let output = std::process::Command::new("erl")
            .args(["-noshell", "+P", "4000000", "-pa"])
            .arg(&self.dir)
            .args(["-eval", &program])
            .output()
            .ok()?;
        let nanos: u64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .ok()?;
        Some(Duration::from_nanos(nanos))
    }
}

impl Drop for ErlangTwin {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
