import ArgumentParser
import RampartCLI

@main
struct Main {
    static func main() async {
        await RampartCommand.main()
    }
}
