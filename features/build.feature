@area:build
Feature: Building images from a Dockerfile
  To build your own image, you create a Dockerfile with a simple syntax for
  defining the steps needed to create the image and run it. Each instruction
  that changes the filesystem creates a layer in the image; the others only
  change the image's configuration. When you change the Dockerfile and rebuild
  the image, only those layers which have changed are rebuilt.

  Background:
    Given the image "busybox" is present locally

  @spec:build.layer-per-instruction
  Scenario: Each filesystem-changing instruction adds a layer
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      RUN echo one > /one.txt
      COPY two.txt /two.txt
      """
    And the file "two.txt" in "{ctx}" contains "two"
    When I successfully run "build -t {img} {ctx}"
    And I compare the layers of "{img}" with those of "{busybox}"
    Then the first 2 layers are the same
    And "{img}" has 2 more layers
    When I run "run --rm {img} cat /one.txt /two.txt"
    Then the output is "one\ntwo"

  @spec:build.metadata-instructions
  Scenario: Metadata instructions change the configuration without adding layers
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      ENV COLOUR=blue
      LABEL org.example.kind=spec
      EXPOSE 8080
      CMD ["echo", "from-cmd"]
      """
    When I successfully run "build -t {img} {ctx}"
    And I compare the layers of "{img}" with those of "{busybox}"
    Then "{img}" has 0 more layers
    And the field "Config.Labels" of "{img}" contains "org.example.kind"
    And the field "Config.Env" of "{img}" contains "COLOUR=blue"
    When I run "run --rm {img}"
    Then the output is "from-cmd"

  @spec:build.cache-reused
  Scenario: Rebuilding an unchanged Dockerfile reuses every cached step
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      RUN echo cached > /cached.txt
      COPY a.txt /a.txt
      """
    And the file "a.txt" in "{ctx}" contains "alpha"
    And I successfully run "build -t {img} {ctx}"
    And I remember the field "Id" of "{img}" as "first_id"
    When I successfully run "build -t {img} {ctx}"
    Then the output contains "Using cache" 2 times
    And the field "Id" of "{img}" is "{$first_id}"

  @spec:build.cache-invalidated
  Scenario: After changing one copied file only that step and later ones are rebuilt
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      RUN echo before > /before.txt
      COPY a.txt /a.txt
      RUN cat /a.txt > /after.txt
      """
    And the file "a.txt" in "{ctx}" contains "version one"
    And I successfully run "build -t {img} {ctx}"
    And the file "a.txt" in "{ctx}" contains "version two"
    When I successfully run "build -t {img} {ctx}"
    Then the output contains "Using cache" 1 times
    When I run "run --rm {img} cat /after.txt"
    Then the output is "version two"

  @spec:build.no-cache
  Scenario: --no-cache rebuilds every step
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      RUN echo x > /x.txt
      """
    And I successfully run "build -t {img} {ctx}"
    When I successfully run "build --no-cache -t {img} {ctx}"
    Then the output contains "Using cache" 0 times

  @spec:build.run-fails
  Scenario: A failing RUN fails the build with its exit code
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      RUN echo about to fail && exit 3
      """
    When I run "build -t {img} {ctx}"
    Then it fails
    And the combined output matches "(returned a non-zero code|exit status):? 3"
    And the image "{img}" does not exist

  @spec:build.args
  Scenario: Build arguments are available to RUN
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      ARG FLAVOUR=plain
      RUN echo "flavour=$FLAVOUR" > /flavour.txt
      """
    When I successfully run "build --build-arg FLAVOUR=spicy -t {img} {ctx}"
    And I run "run --rm {img} cat /flavour.txt"
    Then the output is "flavour=spicy"

  @spec:build.multi-stage
  Scenario: A later stage copies files from an earlier one
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox} AS builder
      RUN echo built-in-stage-one > /artifact.txt
      FROM {busybox}
      COPY --from=builder /artifact.txt /artifact.txt
      """
    When I successfully run "build -t {img} {ctx}"
    And I run "run --rm {img} cat /artifact.txt"
    Then the output is "built-in-stage-one"

  @spec:build.dockerignore
  Scenario: .dockerignore keeps files out of the build context
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      COPY . /ctx/
      """
    And the file "keep.txt" in "{ctx}" contains "keep"
    And the file "secret.txt" in "{ctx}" contains "secret"
    And the file ".dockerignore" in "{ctx}" contains "secret.txt"
    When I successfully run "build -t {img} {ctx}"
    And I run "run --rm {img} ls /ctx"
    Then the output contains "keep.txt"
    And the output does not contain "secret.txt"

  @spec:build.workdir-user-entrypoint
  Scenario: WORKDIR, USER and ENTRYPOINT shape the container
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      WORKDIR /srv/app
      USER 65534
      ENTRYPOINT ["sh", "-c", "pwd; id -u"]
      """
    When I successfully run "build -t {img} {ctx}"
    And I run "run --rm {img}"
    Then the output is "/srv/app\n65534"

  @spec:build.add-archive
  Scenario: ADD unpacks a local tar archive into the image
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      ADD bundle.tar /opt/
      """
    And the build context "{ctx}" holds a tar archive "bundle.tar" with the file "inside/hello.txt" containing "from the archive"
    When I successfully run "build -t {img} {ctx}"
    And I run "run --rm {img} cat /opt/inside/hello.txt"
    Then the output is "from the archive"

  @spec:build.copy-chown
  Scenario: COPY --chown sets the owner of the copied files
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      COPY --chown=65534:65534 owned.txt /owned.txt
      """
    And the file "owned.txt" in "{ctx}" contains "mine"
    When I successfully run "build -t {img} {ctx}"
    And I run "run --rm {img} stat -c %u:%g /owned.txt"
    Then the output is "65534:65534"

  @spec:build.volume-stopsignal-healthcheck
  Scenario: VOLUME, STOPSIGNAL and HEALTHCHECK are recorded in the image configuration
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      VOLUME /data
      STOPSIGNAL SIGUSR1
      HEALTHCHECK --interval=30s CMD true
      """
    When I successfully run "build -t {img} {ctx}"
    Then the field "Config.Volumes" of "{img}" contains "/data"
    And the field "Config.StopSignal" of "{img}" is "SIGUSR1"
    And the field "Config.Healthcheck.Test" of "{img}" contains "true"

  @spec:build.shell
  Scenario: SHELL changes the shell of the shell form of later instructions
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      SHELL ["/usr/bin/env", "MARK=shell-was-changed", "/bin/sh", "-c"]
      RUN echo $MARK > /shell.txt
      """
    When I successfully run "build -t {img} {ctx}"
    And I run "run --rm {img} cat /shell.txt"
    Then the output is "shell-was-changed"

  @spec:build.onbuild
  Scenario: ONBUILD instructions run when another image is built from this one
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      ONBUILD RUN echo triggered > /onbuild.txt
      """
    And I successfully run "build -t {img}:base {ctx}"
    And a build context "ctx2" with this Dockerfile:
      """
      FROM {img}:base
      """
    When I successfully run "build -t {img}:child {ctx2}"
    And I run "run --rm {img}:child cat /onbuild.txt"
    Then the output is "triggered"
    When I run "run --rm {img}:base cat /onbuild.txt"
    Then it fails
