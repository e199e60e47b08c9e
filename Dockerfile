# mcp-frontdoor container image (for users with registry access; CI builds an equivalent image
# from a local binary with scripts/build-frontdoor-image.sh, since nothing can be pulled there;
# so can a host without registry access: README, Deployment, "Without a registry").
#   docker build -t mcp-frontdoor .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin mcp-frontdoor

FROM gcr.io/distroless/cc-debian12
COPY --from=build /src/target/release/mcp-frontdoor /usr/local/bin/mcp-frontdoor
WORKDIR /var/lib/mcp-frontdoor
EXPOSE 8443 9464
ENTRYPOINT ["/usr/local/bin/mcp-frontdoor"]
CMD ["serve", "--config", "/etc/mcp-frontdoor/frontdoor.yaml"]
