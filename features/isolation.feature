@area:isolation
Feature: Isolation
  Docker uses Linux namespaces to provide the isolated workspace called the
  container: each aspect of a container runs in a separate namespace (pid, net,
  ipc, mnt, uts) and its access is limited to that namespace. Control groups
  limit the resources a container can use.

  @spec:isolation.pid-1 @smoke
  Scenario: The container's process is PID 1 in its own PID namespace
    When I run "run --rm {busybox} sh -c 'echo $$'"
    Then the output is "1"

  @spec:isolation.host-processes-invisible
  Scenario: Host processes are invisible inside the container
    Given a host process "sleep 3133.7" is running
    When I run "run --rm {busybox} ps -o args"
    Then it succeeds
    And the output does not contain "3133.7"
    And the output has at most 3 lines

  @spec:isolation.hostname
  Scenario: The container has its own hostname
    When I run "run --rm --hostname {c} {busybox} hostname"
    Then it succeeds
    And the output is "{c}"
    And the host's hostname is not "{c}"

  @spec:isolation.hostname-default
  Scenario: By default the hostname is the container's short ID
    Given I successfully run "run --name {c} {busybox} hostname"
    When I run "logs {c}"
    Then the output is the first 12 characters of the field "Id" of "{c}"

  @spec:isolation.mounts
  Scenario: The container has its own mount table
    Given a tmpfs is mounted on the host at "{tmp}/host-only-mount"
    When I run "run --rm {busybox} cat /proc/self/mounts"
    Then it succeeds
    And the output does not contain "host-only-mount"
    And the output matches "^\S+ / (overlay|\S+) "

  @spec:isolation.ipc
  Scenario: The container has its own IPC namespace
    Given a host shared-memory file "/dev/shm/{c}" exists
    When I run "run --rm {busybox} ls /dev/shm"
    Then it succeeds
    And the output does not contain "{c}"

  @spec:isolation.network-namespace @needs:bridge-network
  Scenario: The container has its own network namespace
    When I run "run --rm {busybox} ls /sys/class/net"
    Then it succeeds
    And the output is "eth0\nlo"

  @spec:isolation.network-none
  Scenario: --network none leaves only the loopback interface
    When I run "run --rm --network none {busybox} ls /sys/class/net"
    Then it succeeds
    And the output is "lo"

  @spec:isolation.memory @needs:memory-limit
  Scenario: --memory limits the memory a container can use
    When I run "run --name {c} --memory 32m --memory-swap 32m {busybox} dd if=/dev/zero of=/dev/shm/fill bs=1M count=60"
    Then the exit code is 137
    And the field "State.OOMKilled" of "{c}" is "true"
    And the field "HostConfig.Memory" of "{c}" is "33554432"

  @spec:isolation.pids @needs:pids-limit
  Scenario: --pids-limit limits the number of processes
    When I run "run --rm --pids-limit 8 {busybox} sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done; wait'"
    Then the error output matches "(can't fork|Resource temporarily unavailable|fork)"

  @spec:isolation.read-only
  Scenario: --read-only makes the root filesystem read-only
    When I run "run --rm --read-only {busybox} touch /new-file"
    Then it fails
    And the error output contains "Read-only file system"

  @spec:isolation.capabilities
  Scenario: The default capability set does not allow network administration
    When I run "run --rm {busybox} ip link add dummy0 type dummy"
    Then it fails
    And the error output matches "(Operation not permitted|Permission denied)"

  @spec:isolation.proc-masked
  Scenario: Sensitive /proc files are masked and /proc/sys is read-only
    When I run "run --rm {busybox} sh -c 'wc -c < /proc/keys; echo 1 > /proc/sys/kernel/ns_last_pid'"
    Then it fails
    And the output is "0"
    And the error output contains "Read-only file system"

  @spec:isolation.sys-read-only
  Scenario: /sys and /proc/sysrq-trigger are read-only inside the container
    When I run "run --rm {busybox} sh -c 'echo h > /proc/sysrq-trigger; mkdir /sys/dockspec-probe'"
    Then it fails
    And the error output contains "Read-only file system"
    And the error output does not contain "No such file"

  @spec:isolation.no-mount
  Scenario: The default capability set does not allow mounting file systems
    When I run "run --rm {busybox} mount -t tmpfs none /tmp"
    Then it fails
    And the error output matches "(?i)(operation not permitted|permission denied)"

  @spec:isolation.masked-paths
  Scenario: Masked /proc files read as empty inside the container
    When I run "run --rm {busybox} sh -c 'wc -c < /proc/timer_list; wc -c < /proc/keys'"
    Then it succeeds
    And the output is "0\n0"

  @spec:isolation.no-new-privileges
  Scenario: --security-opt no-new-privileges stops the container's processes gaining privileges
    When I run "run --rm {busybox} grep NoNewPrivs /proc/self/status"
    Then it succeeds
    And the output matches "NoNewPrivs:\s+0"
    When I run "run --rm --security-opt no-new-privileges {busybox} grep NoNewPrivs /proc/self/status"
    Then it succeeds
    And the output matches "NoNewPrivs:\s+1"
