@area:registry
Feature: Registries
  A Docker registry stores Docker images. When you use docker pull or docker
  run, Docker pulls the required images from your configured registry; when
  you use docker push, Docker pushes your image to it.

  Background:
    Given the image "busybox" is present locally

  @spec:registry.push-pull-tag
  Scenario: An image pushed to a registry can be removed locally and pulled back by tag
    Given a build context "ctx" with this Dockerfile:
      """
      FROM {busybox}
      RUN echo pushed-content > /pushed.txt
      """
    And I successfully run "build -t {registry}/{img}:v1 {ctx}"
    And I remember the field "Id" of "{registry}/{img}:v1" as "image_id"
    When I run "push {registry}/{img}:v1"
    Then it succeeds
    When I successfully run "rmi {registry}/{img}:v1"
    And I run "pull {registry}/{img}:v1"
    Then it succeeds
    And the field "Id" of "{registry}/{img}:v1" is "{$image_id}"
    When I run "run --rm {registry}/{img}:v1 cat /pushed.txt"
    Then the output is "pushed-content"

  @spec:registry.push-pull-digest
  Scenario: An image pushed to a registry can be pulled back by digest
    Given I successfully run "tag {busybox} {registry}/{img}:by-digest"
    And I successfully run "push {registry}/{img}:by-digest"
    And I remember the digest the registry holds for "{registry}/{img}:by-digest" as "digest"
    When I successfully run "rmi {registry}/{img}:by-digest"
    And I run "pull {registry}/{img}@{$digest}"
    Then it succeeds
    And the field "RepoDigests" of "{registry}/{img}@{$digest}" contains "{$digest}"

  @spec:registry.layers-skipped
  Scenario: Pushing layers the registry already has skips them
    Given I successfully run "tag {busybox} {registry}/{img}:first"
    And I successfully run "push {registry}/{img}:first"
    And I successfully run "tag {busybox} {registry}/{img}:second"
    When I run "push {registry}/{img}:second"
    Then it succeeds
    And the output contains "exists"
