import PackagePlugin

/// Embeds the schema migrations and the IANA registry into the target as Swift literals.
///
/// The inputs are taken from the target's own files (Migrations/ reaches the target
/// through a symlink), because SwiftPM re-runs a build command reliably only when the
/// files it reads are inputs of the target: adding or deleting a migration then
/// regenerates the embedded list.
@main
struct EmbedResourcesPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let sourceTarget = target as? SourceModuleTarget else { return [] }
        let files = sourceTarget.sourceFiles.map(\.url)
        let migrations = files
            .filter { $0.pathExtension == "sql" && $0.deletingLastPathComponent().lastPathComponent == "Migrations" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let registry = files.filter { $0.pathExtension == "csv" }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedResources.swift")
        var arguments = [output.path(percentEncoded: false)]
        arguments += registry.map { "--registry=" + $0.path(percentEncoded: false) }
        arguments += migrations.map { $0.path(percentEncoded: false) }
        return [
            .buildCommand(
                displayName: "Embedding \(migrations.count) migrations and the IANA registry",
                executable: try context.tool(named: "EmbedResources").url,
                arguments: arguments,
                inputFiles: migrations + registry,
                outputFiles: [output]
            )
        ]
    }
}
