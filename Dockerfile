# The portcullis image: the sidecar (`portcullis run`, the default command) and the Kubernetes
# injector (`portcullis inject`), from one build.
#
# The build steps are the commands CI runs (scripts/test: `npm ci`, then the tsc build), and
# test/helm/image.test.ts runs every RUN line below in a copy of the repository with exactly the
# files COPY brings in, then starts the result from the final stage's layout as user 65532 on a
# read-only root. No Docker engine runs there: the base image itself is not exercised.
#
# Runtime: no writes anywhere. portcullis keeps its state in memory, reads its config from
# /etc/portcullis (a ConfigMap volume) and logs to stdout, so readOnlyRootFilesystem needs no
# writable volume; /tmp is only needed for Node's own diagnostics if you turn them on
# (--heapsnapshot-signal, --report-on-signal, NODE_COMPILE_CACHE): mount an emptyDir there then.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build
# Production dependencies only from here on.
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# A numeric non-root user (nobody in /etc/passwd needed), the one the chart's securityContext names.
USER 65532:65532
EXPOSE 8080 9901 8443
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["run", "--config", "/etc/portcullis/portcullis.yaml"]
